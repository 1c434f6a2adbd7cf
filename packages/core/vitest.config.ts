import { defineConfig } from "vitest/config";
import { sharedTestConfig } from "../../vitest.shared.js";

// Coverage of core's sources is enforced (DESIGN: core ≥ 90% lines). `index.ts` only re-exports, and
// types.ts, transport.ts, pool.ts and fleet-types.ts hold only interfaces and types: no code to cover.
export default defineConfig(
  sharedTestConfig(import.meta.dirname, {
    coverage: {
      provider: "v8",
      include: ["src/**/*.ts"],
      exclude: ["src/index.ts", "src/types.ts", "src/transport.ts", "src/pool.ts", "src/fleet-types.ts"],
      reporter: ["text-summary", "text"],
      thresholds: { lines: 90, statements: 90 },
    },
  }),
);
