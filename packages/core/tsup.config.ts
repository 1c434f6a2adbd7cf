import { defineConfig } from "tsup";

export default defineConfig({
  // The internal entry shares its modules with the main one (one chunk), so both see the same classes.
  entry: ["src/index.ts", "src/internal.ts"],
  format: ["esm"],
  // The package tsconfig is a composite project for `tsc --build`; declaration bundling needs it off.
  dts: { compilerOptions: { composite: false, incremental: false, customConditions: [] } },
  sourcemap: true,
  clean: true,
  target: "node20",
});
