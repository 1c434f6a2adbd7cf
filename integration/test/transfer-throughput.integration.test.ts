/**
 * Throughput of a 256 MiB upload and download through `executor.transferFile` on each transport, next to
 * OpenSSH's `scp` against the same sshd. Figures are printed, not asserted (loopback speed depends on the
 * machine and its load); each case asserts only that the bytes arrived.
 */
import { mkdtemp, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startSshd } from "@tunnel-sh/testing";
import type { Sshd } from "@tunnel-sh/testing";
import { rate, scp, timed } from "./support/transfer-measure.js";
import { TRANSFER_TRANSPORTS, transferStack, userFolder, writeRandomFile } from "./support/transfer-stack.js";

const SIZE = 256 * 1024 * 1024;

describe("transfer throughput, 256 MiB (printed)", () => {
  let sshd: Sshd;
  let local: string;
  let remote: string;
  let source: string;
  let user: string;
  const figures: string[] = [];

  beforeAll(async () => {
    sshd = await startSshd();
    user = sshd.users.plain.name;
    local = await mkdtemp(join(tmpdir(), "tunnel-transfer-throughput-"));
    remote = await userFolder(user);
    source = join(local, "source.bin");
    await writeRandomFile(source, SIZE);
  }, 60_000);

  afterAll(async () => {
    if (figures.length > 0) console.log(`[transfer throughput] 256 MiB on loopback\n${figures.join("\n")}`);
    await sshd?.stop();
    if (local) await rm(local, { recursive: true, force: true });
    if (remote) await rm(remote, { recursive: true, force: true });
  });

  const record = async (label: string, direction: "upload" | "download", ms: number, arrived: string) => {
    expect((await stat(arrived)).size).toBe(SIZE);
    figures.push(`  ${label.padEnd(8)} ${direction.padEnd(8)} ${rate(SIZE, ms).toFixed(0).padStart(5)} MiB/s  (${(ms / 1000).toFixed(2)} s)`);
  };

  it("scp (the yardstick)", async () => {
    const remotePath = join(remote, "scp.bin");
    const back = join(local, "scp.back");
    await record("scp", "upload", await timed(() => scp(sshd, user, source, `remote:${remotePath}`)), remotePath);
    await record("scp", "download", await timed(() => scp(sshd, user, `remote:${remotePath}`, back)), back);
    await rm(back);
  }, 120_000);

  it.each(TRANSFER_TRANSPORTS)(
    "%s through transferFile",
    async (name) => {
      const stack = transferStack(name, sshd);
      try {
        const target = { host: sshd.host, port: sshd.port, user };
        const remotePath = join(remote, `${name}.bin`);
        const back = join(local, `${name}.back`);
        // Connect first: the figure is about moving bytes.
        await stack.executor.runCommand({ ...target, cmd: "true" });
        const up = await timed(() => stack.executor.transferFile({ ...target, direction: "upload", source, destination: remotePath }));
        await record(name, "upload", up, remotePath);
        const down = await timed(() => stack.executor.transferFile({ ...target, direction: "download", source: remotePath, destination: back }));
        await record(name, "download", down, back);
        await rm(back);
      } finally {
        await stack.close();
      }
    },
    120_000,
  );
});
