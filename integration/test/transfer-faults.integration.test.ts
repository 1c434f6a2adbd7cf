/**
 * Transfers under faults, over both transports against a real sshd: a connection reset mid-transfer (through the
 * fault proxy) leaves neither the destination nor a temp file and a retry succeeds; a corrupted copy is caught
 * by sha256 verification, re-sent once, and reported when it stays corrupt.
 */
import { existsSync } from "node:fs";
import { chown, copyFile, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TransferError, TunnelError } from "@tunnel-sh/core";
import type { Connection, TransferDirection } from "@tunnel-sh/core";
import { startFaultProxy, startSshd } from "@tunnel-sh/testing";
import type { FaultProxy, Sshd } from "@tunnel-sh/testing";
import {
  TRANSFER_TRANSPORTS,
  accountIds,
  decorate,
  flipByte,
  sha256File,
  tempLeftovers,
  transferExecutorConfig,
  transferStack,
  userFolder,
  writeRandomFile,
} from "./support/transfer-stack.js";
import type { TransferStack } from "./support/transfer-stack.js";

const MiB = 1024 * 1024;
/** Big enough that a progress report lands between 30 % and the end on a fast loopback. */
const INTERRUPTED_SIZE = 96 * MiB;

describe.each(TRANSFER_TRANSPORTS)("transfer faults over %s on a real sshd", (name) => {
  let sshd: Sshd;
  let proxy: FaultProxy;
  let proxyKnownHosts: string;
  let local: string;
  let remote: string;
  let user: string;
  let big: string;
  let bigHash: string;
  const stacks: TransferStack[] = [];

  beforeAll(async () => {
    sshd = await startSshd();
    user = sshd.users.plain.name;
    proxy = await startFaultProxy({ target: { host: sshd.host, port: sshd.port } });
    proxyKnownHosts = join(sshd.dir, "known_hosts.proxy");
    await writeFile(proxyKnownHosts, `[${proxy.host}]:${proxy.port} ${sshd.hostPublicKey}\n`);
    local = await mkdtemp(join(tmpdir(), "tunnel-transfer-faults-"));
    remote = await userFolder(user);
    big = join(local, "big.bin");
    bigHash = await writeRandomFile(big, INTERRUPTED_SIZE);
  });

  afterAll(async () => {
    for (const stack of stacks) await stack.close();
    await proxy?.close();
    await sshd?.stop();
    if (local) await rm(local, { recursive: true, force: true });
    if (remote) await rm(remote, { recursive: true, force: true });
  });

  const giveToUser = async (path: string) => {
    const { uid, gid } = accountIds(user);
    await chown(path, uid, gid);
  };

  describe.each(["upload", "download"] as const)("a connection reset during an %s", (direction: TransferDirection) => {
    it("leaves no destination and no temp file, and the executor's retry succeeds", async () => {
      const through = { host: proxy.host, port: proxy.port, user };
      const remotePath = join(remote, `interrupted-${direction}.bin`);
      const localPath = join(local, `interrupted-${direction}.bin`);
      if (direction === "download") {
        await copyFile(big, remotePath);
        await giveToUser(remotePath);
      }
      const source = direction === "upload" ? big : remotePath;
      const destination = direction === "upload" ? remotePath : localPath;
      const destinationFolder = direction === "upload" ? remote : local;
      /** Resets every proxied connection once the transfer passes 30 %; returns where it cut. */
      const cutAtThirtyPercent = () => {
        const cut: { at?: number } = {};
        const onProgress = ({ bytes }: { bytes: number }) => {
          if (cut.at === undefined && bytes >= INTERRUPTED_SIZE * 0.3 && bytes < INTERRUPTED_SIZE) {
            cut.at = bytes;
            proxy.reset();
          }
        };
        return { cut, onProgress };
      };

      // Without retries, the cut surfaces as a lost connection, and nothing is left behind.
      const once = transferStack(name, sshd, { knownHostsPath: proxyKnownHosts, executorConfig: transferExecutorConfig().with({ maxRetries: 0 }) });
      stacks.push(once);
      const first = cutAtThirtyPercent();
      const error = await once.executor
        .transferFile({ ...through, direction, source, destination, onProgress: first.onProgress })
        .catch((caught: unknown) => caught);
      expect(first.cut.at).toBeGreaterThan(0);
      expect(TunnelError.is(error)).toBe(true);
      expect((error as TunnelError).code).toMatch(/^(CONNECTION_LOST|CONNECT)$/);
      expect(existsSync(destination)).toBe(false);
      expect(await tempLeftovers(destinationFolder)).toEqual([]);

      // With retries, the same cut costs one more attempt and the file arrives whole.
      const retrying = transferStack(name, sshd, { knownHostsPath: proxyKnownHosts });
      stacks.push(retrying);
      const second = cutAtThirtyPercent();
      const result = await retrying.executor.transferFile({ ...through, direction, source, destination, onProgress: second.onProgress });
      expect(second.cut.at).toBeGreaterThan(0);
      expect(result).toMatchObject({ attempts: 2, files: 1, bytes: INTERRUPTED_SIZE });
      expect(await sha256File(destination)).toBe(bigHash);
      expect(await tempLeftovers(destinationFolder)).toEqual([]);
    }, 120_000);
  });

  describe("sha256 verification", () => {
    /** A stack whose uploads (or downloads) flip a byte of the copy after the real transfer, `corrupt.count` times. */
    const corruptingStack = (direction: TransferDirection) => {
      const corrupt = { count: 0, transfers: 0 };
      const wrap = (connection: Connection) =>
        decorate(connection, {
          upload: async (request) => {
            await connection.upload(request);
            corrupt.transfers++;
            if (direction === "upload" && corrupt.count > 0) {
              corrupt.count--;
              await flipByte(request.remotePath, 1234);
            }
          },
          download: async (request) => {
            const flip = direction === "download" && corrupt.count > 0;
            if (flip) corrupt.count--;
            const onData = request.onData;
            if (!flip || !onData) {
              await connection.download(request);
              corrupt.transfers++;
              if (flip) await flipByte(request.localPath, 1234);
              return;
            }
            // A verified download is hashed from the bytes the transport hands over while they move: the byte is
            // flipped there, so the copy the hash sees differs.
            let position = 0;
            await connection.download({
              ...request,
              onData: (chunk) => {
                const copy = Buffer.from(chunk);
                if (position <= 1234 && 1234 < position + copy.length) copy[1234 - position] = (copy[1234 - position] ?? 0) ^ 0xff;
                position += copy.length;
                onData(copy);
              },
            });
            corrupt.transfers++;
          },
        });
      const stack = transferStack(name, sshd, { wrap });
      stacks.push(stack);
      return { stack, corrupt };
    };

    it.each(["upload", "download"] as const)("catches a corrupted %s copy and re-sends it once", async (direction) => {
      const { stack, corrupt } = corruptingStack(direction);
      const source = join(direction === "upload" ? local : remote, `verify-once-${direction}.bin`);
      const destination = join(direction === "upload" ? remote : local, `verify-once-${direction}.dest`);
      const hash = await writeRandomFile(source, 3 * MiB);
      await giveToUser(source);
      corrupt.count = 1;
      const result = await stack.executor.transferFile({ host: sshd.host, port: sshd.port, user, direction, source, destination, verify: "sha256" });
      expect(result).toMatchObject({ verified: true, attempts: 1, files: 1 });
      expect(corrupt.transfers).toBe(2);
      expect(await sha256File(destination)).toBe(hash);
      expect(await tempLeftovers(direction === "upload" ? remote : local)).toEqual([]);
    });

    it("fails with a TransferError when the copy stays corrupt, leaving nothing behind", async () => {
      const { stack, corrupt } = corruptingStack("upload");
      const source = join(local, "verify-always.bin");
      await writeRandomFile(source, 1 * MiB);
      const destination = join(remote, "verify-always.dest");
      corrupt.count = Number.POSITIVE_INFINITY;
      const outcome = stack.executor.transferFile({ host: sshd.host, port: sshd.port, user, direction: "upload", source, destination, verify: "sha256" });
      await expect(outcome).rejects.toBeInstanceOf(TransferError);
      await expect(outcome).rejects.toThrow(/sha256 mismatch/);
      expect(corrupt.transfers).toBe(2);
      expect(existsSync(destination)).toBe(false);
      expect(await tempLeftovers(remote)).toEqual([]);
    });

    it("does not flag an intact copy", async () => {
      const { stack, corrupt } = corruptingStack("upload");
      const source = join(local, "verify-intact.txt");
      await writeFile(source, "intact\n");
      const destination = join(remote, "verify-intact.txt");
      const result = await stack.executor.transferFile({ host: sshd.host, port: sshd.port, user, direction: "upload", source, destination, verify: "sha256" });
      expect(result).toMatchObject({ verified: true });
      expect(corrupt.transfers).toBe(1);
      expect(await readFile(destination, "utf8")).toBe("intact\n");
    });
  });
});
