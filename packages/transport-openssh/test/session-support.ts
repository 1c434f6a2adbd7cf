/**
 * What the tests of sessions a connection keeps open (standby sessions, session workers) share: waiting, local
 * processes, and an `ssh` that logs every start.
 */
import { readFileSync, readdirSync } from "node:fs";
import { chmod, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Waits (as long as it takes) until `predicate` holds. */
export async function until(predicate: () => boolean | Promise<boolean>): Promise<void> {
  while (!(await predicate())) await sleep(20);
}

/** Local processes whose command line mentions `text` (ssh clients of one control socket). */
export function localProcessesNaming(text: string): number[] {
  return readdirSync("/proc")
    .filter((entry) => /^\d+$/.test(entry))
    .filter((entry) => {
      try {
        return readFileSync(`/proc/${entry}/cmdline`, "latin1").includes(text);
      } catch {
        return false;
      }
    })
    .map(Number);
}

/**
 * An `ssh` in `folder` that logs every start before it runs the real one; `spawns()` counts the starts so far.
 */
export async function countingSsh(folder: string): Promise<{ readonly sshPath: string; readonly spawns: () => Promise<number> }> {
  const log = join(folder, "spawns");
  await writeFile(log, "");
  const sshPath = join(folder, "ssh");
  await writeFile(sshPath, `#!/bin/sh\necho "$$" >> ${log}\nexec ssh "$@"\n`);
  await chmod(sshPath, 0o755);
  return { sshPath, spawns: async () => (await readFile(log, "utf8")).split("\n").filter((line) => line !== "").length };
}
