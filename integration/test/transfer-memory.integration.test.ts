/**
 * Bounded memory: a 1 GiB upload and a 1 GiB download keep this process's peak RSS within 64 MiB of where it
 * started, on both transports. This file runs in its own test process (vitest forks one per file), so nothing
 * else shares the figures; each is printed.
 */
import { mkdtemp, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startSshd } from "@tunnel-sh/testing";
import type { Sshd } from "@tunnel-sh/testing";
import { mib, peakRssDuring, rate } from "./support/transfer-measure.js";
import { TRANSFER_TRANSPORTS, transferStack, userFolder, writeRandomFile } from "./support/transfer-stack.js";
import type { TransferStack } from "./support/transfer-stack.js";

const GiB = 1024 * 1024 * 1024;
const RSS_BOUND = 64 * 1024 * 1024;

describe("transfer memory", () => {
  let sshd: Sshd;
  let local: string;
  let remote: string;
  let source: string;

  beforeAll(async () => {
    sshd = await startSshd();
    local = await mkdtemp(join(tmpdir(), "tunnel-transfer-memory-"));
    remote = await userFolder(sshd.users.plain.name);
    source = join(local, "one-gib.bin");
    await writeRandomFile(source, GiB);
  }, 120_000);

  afterAll(async () => {
    await sshd?.stop();
    if (local) await rm(local, { recursive: true, force: true });
    if (remote) await rm(remote, { recursive: true, force: true });
  });

  describe.each(TRANSFER_TRANSPORTS)("over %s", (name) => {
    let stack: TransferStack;
    beforeAll(() => {
      stack = transferStack(name, sshd);
    });
    afterAll(async () => {
      await stack?.close();
    });

    it.each(["upload", "download"] as const)(
      "a 1 GiB %s stays within 64 MiB of the starting RSS",
      async (direction) => {
        const target = { host: sshd.host, port: sshd.port, user: sshd.users.plain.name };
        const remotePath = join(remote, "one-gib.bin");
        const back = join(local, "one-gib.back");
        // Warm up the connection and the code paths, so the measure is of the transfer, not of first use.
        await stack.executor.runCommand({ ...target, cmd: "true" });
        const startedAt = performance.now();
        const measure = await peakRssDuring(async () => {
          const result = await stack.executor.transferFile({
            ...target,
            direction,
            source: direction === "upload" ? source : remotePath,
            destination: direction === "upload" ? remotePath : back,
          });
          expect(result.bytes).toBe(GiB);
        });
        const seconds = (performance.now() - startedAt) / 1000;
        expect((await stat(direction === "upload" ? remotePath : back)).size).toBe(GiB);
        if (direction === "download") await rm(back, { force: true });
        console.log(
          `[transfer memory] ${name} ${direction} 1 GiB: RSS ${mib(measure.start)} -> peak ${mib(measure.peak)} MiB ` +
            `(+${mib(measure.delta)} MiB), ${seconds.toFixed(1)} s, ${rate(GiB, seconds * 1000).toFixed(0)} MiB/s`,
        );
        expect(measure.delta).toBeLessThan(RSS_BOUND);
      },
      600_000,
    );
  });
});
