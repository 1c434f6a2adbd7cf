import { defineConfig } from "tsup";

export default defineConfig({
  entry: ["src/index.ts"],
  format: ["esm"],
  // The package tsconfig is a composite project for `tsc --build`; declaration bundling needs it off.
  dts: { compilerOptions: { composite: false, incremental: false, customConditions: [] } },
  sourcemap: true,
  clean: true,
  target: "node20",
});
