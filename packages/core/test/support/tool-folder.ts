import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll } from "vitest";

/**
 * A folder of links to `tools` (as this machine's PATH finds them) and nothing else: a PATH for remote snippets on a
 * host without perl or other tools. Removed after the calling file's tests.
 */
export function toolFolder(prefix: string, tools: readonly string[]): string {
  const folder = mkdtempSync(join(tmpdir(), prefix));
  for (const tool of tools)
    symlinkSync(
      spawnSync("sh", ["-c", `command -v ${tool}`])
        .stdout.toString()
        .trim(),
      join(folder, tool),
    );
  afterAll(() => rmSync(folder, { recursive: true, force: true }));
  return folder;
}
