/**
 * Uploads and scripts under continuous faults — sshd session processes killed and connections reset (RST) at random
 * moments — over both transports leave no temp file (`.part`) and no script folder behind, once the faults stop.
 * Operations may fail (that is what the faults do); what they leave behind may not. The number of operations and of
 * faults (one per third operation) is fixed, so the run does not depend on the machine's speed.
 */
import { randomBytes } from "node:crypto";
import { mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startFaultProxy, startSshd } from "@tunnel-sh/testing";
import type { FaultProxy, Sshd } from "@tunnel-sh/testing";
import { busyRemoteCommandsUnder, eventually, remoteCommandsUnder, sshdUserChildren } from "./support/fault-processes.js";
import type { ProcessInfo } from "./support/fault-processes.js";
import { makeStack, TRANSPORTS, testExecutorConfig } from "./support/transports.js";

const OPERATIONS = 120;
const CONCURRENCY = 8;

/** Temp files and script folders anywhere under `folder`. */
async function leftovers(folder: string): Promise<string[]> {
  const entries = await readdir(folder, { recursive: true, withFileTypes: true });
  return entries
    .filter((entry) => entry.name.includes(".tunnel-") || entry.name.endsWith(".part") || entry.name.startsWith("tunnel-script."))
    .map((entry) => entry.name);
}

describe.each(TRANSPORTS)("temp files under session kills and resets over %s", (transportName) => {
  let sshd: Sshd;
  let proxy: FaultProxy;
  let local: string;
  let knownHosts: string;
  const remote = `/tmp/tunnel-temp-soak-${transportName}-${process.pid}`;

  beforeAll(async () => {
    sshd = await startSshd();
    proxy = await startFaultProxy({ target: { host: sshd.host, port: sshd.port } });
    local = await mkdtemp(join(tmpdir(), "tunnel-temp-soak-"));
    knownHosts = join(local, "known_hosts");
    await writeFile(knownHosts, `[${proxy.host}]:${proxy.port} ${sshd.hostPublicKey}\n`);
    for (let index = 0; index < 4; index++) await writeFile(join(local, `file-${index}.bin`), randomBytes(256 * 1024 * (index + 1)));
  });
  afterAll(async () => {
    await proxy?.close();
    await sshd?.stop();
    await rm(local, { recursive: true, force: true });
    await rm(remote, { recursive: true, force: true });
  });

  it(`${OPERATIONS} uploads and scripts leave 0 temp files and 0 script folders`, { timeout: 300_000 }, async () => {
    const stack = makeStack(
      transportName,
      { clientKeyPath: sshd.clientKeyPath, knownHostsPath: knownHosts },
      {
        executor: testExecutorConfig().with({ retryBackoff: 50, maxRetryDelay: 200, breaker: { failureThreshold: 100_000, cooldown: 1_000 } }),
      },
    );
    const target = { host: proxy.host, port: proxy.port, user: sshd.users.plain.name };
    await stack.executor.runCommand({ ...target, cmd: `rm -rf ${remote} && mkdir -p ${remote}/scripts` });
    const faults = { kills: 0, resets: 0 };
    // Faults are tied to operations, not to the clock: every third operation gets one at a random moment of its run.
    const fault = async (index: number) => {
      await new Promise((resolve) => setTimeout(resolve, Math.floor(Math.random() * 150)));
      if (index % 15 === 0) {
        proxy.reset();
        faults.resets++;
        return;
      }
      const children = sshdUserChildren(sshd.pid, sshd.users.plain.name);
      const victim = children[Math.floor(Math.random() * children.length)];
      if (!victim) return;
      try {
        process.kill(victim.pid, "SIGKILL");
        faults.kills++;
      } catch {
        // gone already
      }
    };
    let next = 0;
    let succeeded = 0;
    const worker = async () => {
      while (next < OPERATIONS) {
        const index = next++;
        const operation =
          index % 2 === 0
            ? stack.executor.transferFile({
                ...target,
                direction: "upload",
                source: join(local, `file-${index % 4}.bin`),
                destination: `${remote}/up-${index}.bin`,
                ...(index % 4 === 0 ? { verify: "sha256" as const } : {}),
              })
            : stack.executor.runScript({
                ...target,
                content: `#!/bin/sh\necho "s$1"\nsleep 0.0${index % 10}`,
                args: [String(index)],
                env: { TMPDIR: `${remote}/scripts` },
                timeout: 20_000,
              });
        const faulted = index % 3 === 0 ? fault(index) : Promise.resolve();
        if (
          await operation.then(
            () => true,
            () => false,
          )
        )
          succeeded++;
        await faulted;
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));
    // Clean-up of the last cut operations ends with them; then nothing may run on the host but the sessions an open
    // connection keeps ready for its next command, and once the stack is closed, nothing at all.
    const commandLines = (entries: readonly ProcessInfo[]) => entries.map((entry) => `${entry.pid} ${entry.ppid} ${entry.args.slice(0, 300)}`);
    await eventually(() => busyRemoteCommandsUnder(sshd.pid, sshd.users.plain.name).length === 0, 10_000);
    expect(commandLines(busyRemoteCommandsUnder(sshd.pid, sshd.users.plain.name))).toEqual([]);
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    await stack.close();
    await eventually(() => remoteCommandsUnder(sshd.pid, sshd.users.plain.name).length === 0, 10_000);
    expect(commandLines(remoteCommandsUnder(sshd.pid, sshd.users.plain.name))).toEqual([]);
    expect(faults.kills + faults.resets).toBeGreaterThanOrEqual(OPERATIONS / 6);
    expect(succeeded).toBeGreaterThan(OPERATIONS / 4);
    expect(await leftovers(remote)).toEqual([]);
  });
});
