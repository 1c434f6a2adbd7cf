import { defineConfig } from "tsup";

export default defineConfig({
  entry: ["src/index.ts", "src/bin.ts"],
  format: ["esm"],
  // The package tsconfig is a composite project for `tsc --build`; declaration bundling needs it off.
  dts: { compilerOptions: { composite: false, incremental: false, customConditions: [] } },
  sourcemap: true,
  clean: true,
  target: "node20",
  // commander is bundled: resolving and loading its CommonJS files was a third of `tunnel --help`'s start-up.
  // Its licence travels in THIRD-PARTY-NOTICES.md.
  noExternal: ["commander"],
  // commander is CommonJS: its require() of Node built-ins needs a real require in the ESM output.
  banner: { js: 'import { createRequire as __tunnelCreateRequire } from "node:module"; const require = __tunnelCreateRequire(import.meta.url);' },
});
