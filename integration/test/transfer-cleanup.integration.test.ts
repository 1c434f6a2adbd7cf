/**
 * Temp files of interrupted transfers are cleaned up, and transfers that failed before anything was committed at the
 * destination are retried: a killed SFTP server process, a session killed under an exec-based transfer.
 */
import { randomBytes } from "node:crypto";
import { readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { TunnelError } from "@tunnel-sh/core";
import { remoteProcesses } from "@tunnel-sh/testing";
import { scratchServer } from "./support/scratch-server.js";
import { makeStack, TRANSPORTS } from "./support/transports.js";

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
  const server = scratchServer(transportName, "tunnel-cleanup");
  beforeAll(async () => {
    await writeFile(join(server.local, "big.bin"), randomBytes(64 * 1024 * 1024));
  });

  it("an upload whose server-side process is killed mid-transfer is retried and leaves no temp file", async () => {
    let killed = 0;
    const killer = (async () => {
      for (let tries = 0; tries < 200 && killed === 0; tries++) {
        await new Promise((resolve) => setTimeout(resolve, 25));
        const processes = await remoteProcesses(server.sshd.users.plain.name);
        // The server-side process that writes the temp file: the SFTP server, or the `cat` under the shell naming it.
        const writers = processes.filter(
          (entry) =>
            /internal-sftp|sftp-server/.test(entry.args) ||
            (entry.args === "cat" && processes.some((parent) => parent.pid === entry.ppid && parent.args.includes(server.remote))),
        );
        for (const entry of writers) {
          if (await descendsFrom(entry.pid, server.sshd.pid)) {
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
    const result = await server.stack.executor
      .transferFile({
        ...server.target(),
        direction: "upload",
        source: join(server.local, "big.bin"),
        destination: `${server.remote}/big.bin`,
        verify: "sha256",
      })
      .catch((caught: unknown) => caught);
    await killer;
    expect(killed).toBeGreaterThan(0);
    expect(result).toMatchObject({ files: 1, verified: true });
    expect((result as { attempts: number }).attempts).toBeGreaterThanOrEqual(2);
    expect(await temps(server.remote)).toEqual([]);
  });

  it("an upload aborted mid-transfer on a connection of one channel leaves no temp file (removed over another connection)", async () => {
    // With one channel, stopping the command may close the session and its connection (openssh): the temp file is
    // then removed over another connection, on the cleanup's own budget, though the operation's signal has fired.
    const stack = makeStack(transportName, server.sshd, { transport: { maxChannels: 1 } });
    try {
      const controller = new AbortController();
      let stopped = false;
      const outcome = await stack.executor
        .transferFile({
          ...server.target(),
          direction: "upload",
          source: join(server.local, "big.bin"),
          destination: `${server.remote}/one-channel.bin`,
          signal: controller.signal,
          // Aborted from a progress report: always mid-transfer, once the temp file exists on the host.
          onProgress: (progress) => {
            if (!stopped && progress.bytes > 8 * 1024 * 1024) {
              stopped = true;
              controller.abort();
            }
          },
        })
        .catch((caught: unknown) => caught);
      expect(stopped).toBe(true);
      expect(TunnelError.is(outcome) ? outcome.code : outcome).toBe("ABORTED");
      expect(await temps(server.remote)).toEqual([]);
      expect((await readdir(server.remote)).filter((name) => name.startsWith("one-channel"))).toEqual([]);
    } finally {
      await stack.close();
    }
  });
});
