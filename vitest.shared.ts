import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import type { ViteUserConfig } from "vitest/config";

const packagesDir = resolve(import.meta.dirname, "packages");

type Alias = { readonly find: RegExp; readonly replacement: string };

/**
 * Tests import sibling packages from their sources, so a test run never needs a prior build: every entry point of
 * a package's `exports` map (`@tunnel-sh/core`, `@tunnel-sh/core/internal`) maps to its `@tunnel-sh/source` file.
 */
function sourceAliases(): Alias[] {
  const aliases: Alias[] = [];
  for (const folder of readdirSync(packagesDir)) {
    const manifestPath = join(packagesDir, folder, "package.json");
    const manifest = existsSync(manifestPath) ? (JSON.parse(readFileSync(manifestPath, "utf8")) as { exports?: Record<string, unknown> }) : {};
    const entries = Object.entries(manifest.exports ?? {}).filter(([subpath]) => subpath !== "./package.json");
    if (entries.length === 0) entries.push([".", { "@tunnel-sh/source": "./src/index.ts" }]);
    for (const [subpath, conditions] of entries) {
      const source = (conditions as Record<string, unknown> | null)?.["@tunnel-sh/source"];
      if (typeof source !== "string") continue;
      const specifier = `@tunnel-sh/${folder}${subpath === "." ? "" : subpath.slice(1)}`;
      aliases.push({ find: new RegExp(`^${specifier.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")}$`), replacement: join(packagesDir, folder, source) });
    }
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
