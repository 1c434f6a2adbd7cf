/**
 * Temp files of interrupted transfers are cleaned up, and transfers that failed before anything was committed at the
 * destination are retried: a killed SFTP server process, a session killed under an exec-based transfer.
 */
import { randomBytes } from "node:crypto";
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { remoteProcesses, startSshd } from "@tunnel-sh/testing";
import type { Sshd } from "@tunnel-sh/testing";
import { makeStack, TRANSPORTS } from "./support/transports.js";
import type { Stack } from "./support/transports.js";

/** Is `pid` a descendant of `root`? (Other test runs share the test accounts: touch only this server's processes.) */
async function descendsFrom(pid: number, root: number): Promise<boolean> {
  for (let current = pid, depth = 0; current > 1 && depth < 32; depth++) {
    if (current === root) return true;
    const stat = await readFile(`/proc/${current}/stat`, "utf8").catch(() => "");
    current = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
  }
  return false;
}

async function temps(folder: string): Promise<string[]> {
  return (await readdir(folder)).filter((name) => name.includes(".tunnel-") || name.endsWith(".part"));
}

describe.each(TRANSPORTS)("transfer clean-up over %s", (transportName) => {
  let sshd: Sshd;
  let stack: Stack;
  let local: string;
  let remote: string;
  const target = () => ({ host: sshd.host, port: sshd.port, user: sshd.users.plain.name });

  beforeAll(async () => {
    sshd = await startSshd();
    stack = makeStack(transportName, sshd);
    local = await mkdtemp(join(tmpdir(), "tunnel-cleanup-local-"));
    remote = `/tmp/tunnel-cleanup-remote-${transportName}-${process.pid}`;
    await stack.executor.runCommand({ ...target(), cmd: `rm -rf ${remote} && mkdir -p ${remote}` });
    await writeFile(join(local, "big.bin"), randomBytes(64 * 1024 * 1024));
  });
  afterAll(async () => {
    await stack?.executor.runCommand({ ...target(), cmd: `rm -rf ${remote}` }).catch(() => undefined);
    await stack?.close();
    await sshd?.stop();
    await rm(local, { recursive: true, force: true });
  });

  it("an upload whose server-side process is killed mid-transfer is retried and leaves no temp file", async () => {
    let killed = 0;
    const killer = (async () => {
      for (let tries = 0; tries < 200 && killed === 0; tries++) {
        await new Promise((resolve) => setTimeout(resolve, 25));
        const processes = await remoteProcesses(sshd.users.plain.name);
        // The server-side process that writes the temp file: the SFTP server, or the `cat` under the shell naming it.
        const writers = processes.filter(
          (entry) =>
            /internal-sftp|sftp-server/.test(entry.args) ||
            (entry.args === "cat" && processes.some((parent) => parent.pid === entry.ppid && parent.args.includes(remote))),
        );
        for (const entry of writers) {
          if (await descendsFrom(entry.pid, sshd.pid)) {
            try {
              process.kill(entry.pid, "SIGKILL");
              killed++;
            } catch {
              // gone already
            }
          }
        }
      }
    })();
    const result = await stack.executor
      .transferFile({ ...target(), direction: "upload", source: join(local, "big.bin"), destination: `${remote}/big.bin`, verify: "sha256" })
      .catch((caught: unknown) => caught);
    await killer;
    expect(killed).toBeGreaterThan(0);
    expect(result).toMatchObject({ files: 1, verified: true });
    expect((result as { attempts: number }).attempts).toBeGreaterThanOrEqual(2);
    expect(await temps(remote)).toEqual([]);
  });
});
