import { defineConfig } from "vitest/config";
import { sharedTestConfig } from "../../../vitest.shared.js";

// Figures for the README, run on demand: npx vitest run --config bench/vitest.config.ts
const config = sharedTestConfig(import.meta.dirname, { include: ["bench/**/*.bench.test.ts"], testTimeout: 300_000 });
export default defineConfig({ ...config, root: `${import.meta.dirname}/..` });
