import { readFileSync } from "node:fs";
import { defineConfig } from "tsup";

const manifest = JSON.parse(readFileSync(new URL("./package.json", import.meta.url), "utf8")) as { tunnel?: { bundles?: string[] } };

export default defineConfig({
  entry: ["src/index.ts", "src/bin.ts"],
  format: ["esm"],
  // The package tsconfig is a composite project for `tsc --build`; declaration bundling needs it off.
  dts: { compilerOptions: { composite: false, incremental: false, customConditions: [] } },
  sourcemap: true,
  clean: true,
  target: "node20",
  // `tunnel.bundles` in package.json (commander) is bundled: resolving and loading its CommonJS files was a third of
  // `tunnel --help`'s start-up. Its licence travels in THIRD-PARTY-NOTICES.md; scripts/check-layering.mjs reads the list.
  noExternal: manifest.tunnel?.bundles ?? [],
  // commander is CommonJS: its require() of Node built-ins needs a real require in the ESM output.
  banner: { js: 'import { createRequire as __tunnelCreateRequire } from "node:module"; const require = __tunnelCreateRequire(import.meta.url);' },
});
