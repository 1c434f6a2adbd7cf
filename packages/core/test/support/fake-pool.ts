/**
 * A Pool over local-shell connections (the testing kit's FakeTransport running each command in a local `/bin/sh`
 * and copying files on this machine), with scripted acquire failures and transfer faults: enough to test the
 * executor's policy (retries, breaker, lease handling) and core's derived runs and transfers without a network.
 *
 * Core cannot depend on @tunnel-sh/testing (testing depends on core; the package graph has no cycles), so these
 * tests import its source through the workspace's vitest alias and `test/tsconfig.json`'s `paths`.
 */
import { open } from "node:fs/promises";
import { FakeTransport, localFileCopy, localShellReply, type TransferReplyFunction } from "@tunnel-sh/testing";
import { ConnectError } from "../../src/errors.js";
import type { Lease, Pool, PoolStats } from "../../src/pool.js";
import type { Connection } from "../../src/transport.js";
import type { Target } from "../../src/types.js";

/** Faults for the next copies: `corruptNext` flips the first byte of that many copies, `loseNext` cuts that many midway with a lost connection. */
export const localTransferFaults = { corruptNext: 0, loseNext: 0 };

/** localFileCopy with the faults of `localTransferFaults`. */
const faultyCopy: TransferReplyFunction = async (request, connection, direction) => {
  const corrupt = localTransferFaults.corruptNext > 0;
  if (corrupt) localTransferFaults.corruptNext -= 1;
  const lose = localTransferFaults.loseNext > 0;
  if (lose) localTransferFaults.loseNext -= 1;
  const cut = new AbortController();
  const signal = request.signal ? AbortSignal.any([request.signal, cut.signal]) : cut.signal;
  const onProgress: NonNullable<typeof request.onProgress> = (progress) => {
    request.onProgress?.(progress);
    if (lose && progress.bytes > (progress.total ?? 0) / 2) cut.abort();
  };
  try {
    await localFileCopy({ ...request, signal, onProgress }, connection, direction);
  } catch (error) {
    if (cut.signal.aborted && !request.signal?.aborted) throw new ConnectError("the connection was lost", { lost: true });
    throw error;
  }
  if (corrupt) {
    const file = await open(direction === "upload" ? request.remotePath : request.localPath, "r+");
    try {
      const first = Buffer.alloc(1);
      if ((await file.read(first, 0, 1, 0)).bytesRead === 1) await file.write(Buffer.from([(first[0] ?? 0) ^ 0xff]), 0, 1, 0);
    } finally {
      await file.close();
    }
  }
  return {};
};

/** Connections whose processes are local `/bin/sh -c` children: real streams, real exit codes and signals. */
export function localTransport(): FakeTransport {
  return new FakeTransport({
    name: "local",
    spawn: localShellReply,
    upload: faultyCopy,
    download: faultyCopy,
    capabilities: { pty: false, signals: true, transfer: true },
  });
}

export interface FakePool extends Pool {
  /** Errors the next acquires throw, in order. */
  readonly failNext: unknown[];
  readonly acquired: Target[];
  readonly released: number[];
  readonly destroyed: unknown[];
  readonly refusals: number[];
  /** Where the pool's connections come from; its call log shows every command spawned. */
  readonly transport: FakeTransport;
  /** The connection leases get; after a lease is destroyed, a new one from `transport`. A test may set its own. */
  connection: Connection | undefined;
  /** The connection leases get now (connecting first when there is none). */
  current(): Promise<Connection>;
}

export function fakePool(): FakePool {
  let leaseId = 0;
  const pool: FakePool = {
    failNext: [],
    acquired: [],
    released: [],
    destroyed: [],
    refusals: [],
    transport: localTransport(),
    connection: undefined,
    async current() {
      pool.connection ??= await pool.transport.connect({ host: "localhost" });
      return pool.connection;
    },
    async acquire(target, options) {
      options?.signal?.throwIfAborted();
      pool.acquired.push(target);
      const failure = pool.failNext.shift();
      if (failure !== undefined) throw failure;
      const connection = await pool.current();
      const id = ++leaseId;
      let settled = false;
      const lease: Lease = {
        connection,
        key: `${target.user ?? ""}@${target.host}:${target.port ?? ""}`,
        release() {
          if (settled) return;
          settled = true;
          pool.released.push(id);
        },
        destroy(reason) {
          if (settled) return;
          settled = true;
          pool.destroyed.push(reason);
          if (pool.connection === connection) pool.connection = undefined;
        },
        refused() {
          if (settled) return;
          settled = true;
          pool.refusals.push(id);
        },
      };
      return lease;
    },
    stats(): PoolStats {
      return {
        connections: 1,
        busyChannels: 0,
        idleConnections: 1,
        waiting: 0,
        created: 1,
        evicted: {},
        keys: {},
        acquireWaitMs: { count: 0, p50: 0, p95: 0, max: 0 },
      };
    },
    async close() {},
    async destroy() {},
  };
  return pool;
}
