/**
 * A Pool over local-shell connections, with scripted acquire failures: enough to test the executor's
 * policy (retries, breaker, lease handling) without a network.
 */
import type { Lease, Pool, PoolStats } from "../../src/pool.js";
import type { Connection } from "../../src/transport.js";
import type { Target } from "../../src/types.js";
import { localConnection } from "./local-connection.js";

export interface FakePool extends Pool {
  /** Errors the next acquires throw, in order. */
  readonly failNext: unknown[];
  readonly acquired: Target[];
  readonly released: number[];
  readonly destroyed: unknown[];
  readonly refusals: number[];
  connection: Connection;
}

export function fakePool(): FakePool {
  let leaseId = 0;
  const pool: FakePool = {
    failNext: [],
    acquired: [],
    released: [],
    destroyed: [],
    refusals: [],
    connection: localConnection(),
    async acquire(target, options) {
      options?.signal?.throwIfAborted();
      pool.acquired.push(target);
      const failure = pool.failNext.shift();
      if (failure !== undefined) throw failure;
      const id = ++leaseId;
      let settled = false;
      const lease: Lease = {
        connection: pool.connection,
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
          pool.connection = localConnection();
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
