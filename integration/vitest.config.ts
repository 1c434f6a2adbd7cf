import { defineConfig } from "vitest/config";
import { sharedTestConfig } from "../vitest.shared.js";

// Real-sshd suites: files run one at a time so sshd's per-source limits and the 2-core CI machine are not swamped.
export default defineConfig(sharedTestConfig(import.meta.dirname, { fileParallelism: false }));
