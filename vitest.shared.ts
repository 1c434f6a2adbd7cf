import { readdirSync } from "node:fs";
import { join, resolve } from "node:path";
import type { ViteUserConfig } from "vitest/config";

const packagesDir = resolve(import.meta.dirname, "packages");

/** Tests import sibling packages from their sources, so a test run never needs a prior build. */
function sourceAliases(): Record<string, string> {
  const aliases: Record<string, string> = {};
  for (const folder of readdirSync(packagesDir)) {
    aliases[`@tunnel-sh/${folder}`] = join(packagesDir, folder, "src", "index.ts");
  }
  return aliases;
}

export function sharedTestConfig(_packageDir: string, extra: ViteUserConfig["test"] = {}): ViteUserConfig {
  return {
    resolve: { alias: sourceAliases() },
    test: {
      include: ["test/**/*.test.ts"],
      testTimeout: 30_000,
      hookTimeout: 60_000,
      ...extra,
    },
  };
}
