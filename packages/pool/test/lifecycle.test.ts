import { PoolClosedError, hasCode } from "@tunnel-sh/core";
import { FakeConnection, FakeTransport, type ConnectOutcome } from "@tunnel-sh/testing";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { ConnectionPool } from "../src/index.js";
import type { PoolConfig } from "../src/index.js";
import { flush, leaseOf, track } from "./helpers.js";

const web = { host: "web-1", user: "deploy", port: 22 };
const db = { host: "db-1", user: "deploy", port: 22 };

let transport: FakeTransport;
/** Outcomes of the next connects, in order; when empty, connects succeed at once. */
let connects: ConnectOutcome[];

function newTransport(): FakeTransport {
  connects = [];
  return new FakeTransport({ connect: () => connects.shift() ?? {} });
}

function makePool(config: Partial<PoolConfig> = {}): ConnectionPool {
  return new ConnectionPool(transport, config);
}

function fake(connection: unknown): FakeConnection {
  return connection as FakeConnection;
}

describe("close and destroy", () => {
  beforeEach(() => {
    vi.useFakeTimers();
    transport = newTransport();
  });

  afterEach(() => {
    expect(vi.getTimerCount()).toBe(0);
    vi.useRealTimers();
  });

  it("close() rejects waiting and new acquires, lets leases finish, then closes every connection", async () => {
    const pool = makePool({ maxChannelsPerConnection: 1, maxConnectionsPerKey: 1 });
    const busy = await pool.acquire(web);
    (await pool.acquire(db)).release();
    const waiting = track(pool.acquire(web));
    await flush();
    const closing = track(pool.close());
    await flush();
    expect(waiting.error).toBeInstanceOf(PoolClosedError);
    expect(hasCode(await pool.acquire(db).catch((error: unknown) => error), "POOL_CLOSED")).toBe(true);
    // The idle connection closes now; the busy one when its lease comes back.
    expect(transport.connections.map((connection) => connection.closed)).toEqual([false, true]);
    expect(closing.state).toBe("pending");
    expect(pool.state).toBe("closing");
    busy.release();
    await flush();
    expect(closing.state).toBe("resolved");
    expect(pool.state).toBe("closed");
    expect(transport.connections.every((connection) => connection.closed && connection.listenerCount === 0)).toBe(true);
    expect(pool.stats()).toMatchObject({ connections: 0, busyChannels: 0, waiting: 0, evicted: { "pool-closed": 2 } });
    expect(pool.close()).toBe(closing.promise);
  });

  it("close() aborts a connect in flight and fails its waiters", async () => {
    const pool = makePool();
    connects.push({ hold: true });
    const waiting = track(pool.acquire(web));
    await flush();
    await pool.close();
    expect(transport.callsOf("connect")[0]?.abortSignal?.aborted).toBe(true);
    expect(waiting.error).toBeInstanceOf(PoolClosedError);
    expect(pool.stats().connecting).toBe(0);
  });

  it("destroy(error) rejects waiters with the error and closes busy connections at once", async () => {
    const pool = makePool({ maxChannelsPerConnection: 1, maxConnectionsPerKey: 1 });
    const busy = await pool.acquire(web);
    const waiting = track(pool.acquire(web));
    await flush();
    const reason = new Error("shutting down");
    await pool.destroy(reason);
    expect(waiting.error).toBe(reason);
    expect(fake(busy.connection).closed).toBe(true);
    expect(pool.state).toBe("destroyed");
    busy.release();
    expect(pool.stats()).toMatchObject({ connections: 0, busyChannels: 0, evicted: { "pool-destroyed": 1 } });
    expect(hasCode(await pool.acquire(web).catch((error: unknown) => error), "POOL_CLOSED")).toBe(true);
  });

  it("destroy() during a draining close() closes the busy connections at once and settles both", async () => {
    const pool = makePool();
    const busy = await pool.acquire(web);
    const closing = track(pool.close());
    await flush();
    expect(closing.state).toBe("pending");
    await pool.destroy();
    await flush();
    expect(closing.state).toBe("resolved");
    expect(fake(busy.connection).closed).toBe(true);
    expect(pool.stats().evicted).toEqual({ "pool-closed": 1 });
  });

  it("await using closes the pool at the end of the scope", async () => {
    let connection: FakeConnection | undefined;
    {
      await using pool = makePool();
      const lease = await pool.acquire(web);
      connection = fake(lease.connection);
      lease.release();
    }
    expect(connection.closed).toBe(true);
  });

  it("leaves no lease, connection, listener or timer behind after heavy use", async () => {
    const pool = makePool({ maxChannelsPerConnection: 3, maxConnectionsPerKey: 2, acquireTimeoutMs: 5_000, pingAfterIdleMs: 100 });
    const targets = [web, db, { host: "cache-1" }];
    const runs = Array.from({ length: 60 }, async (_, index) => {
      const lease = await pool.acquire(targets[index % 3]!);
      await vi.advanceTimersByTimeAsync(index % 7);
      if (index % 10 === 0) lease.destroy(new Error("suspect"));
      else lease.release();
    });
    await Promise.all(runs);
    await vi.advanceTimersByTimeAsync(200);
    const stats = pool.stats();
    expect(stats.busyChannels).toBe(0);
    expect(stats.acquireWaitMs.count).toBe(60);
    for (const keyStats of Object.values(stats.keys)) {
      expect(keyStats.connections).toBeLessThanOrEqual(2);
      expect(keyStats.connectionDetails.every((detail) => detail.busyChannels === 0)).toBe(true);
    }
    await pool.close();
    expect(transport.openConnections()).toHaveLength(0);
    expect(transport.connections.every((connection) => connection.listenerCount === 0)).toBe(true);
  });
});

describe("after close, nothing keeps Node alive", () => {
  it("no timer of the pool keeps Node alive (real timers, counted with process.getActiveResourcesInfo)", async () => {
    transport = newTransport();
    const timers = (): number => process.getActiveResourcesInfo().filter((resource) => resource === "Timeout").length;
    const before = timers();
    const pool = makePool({ maxConnectionsPerKey: 1, maxChannelsPerConnection: 5, acquireTimeoutMs: 10_000, idleTimeoutMs: 60_000, maxLifetimeMs: 600_000 });
    const leases = await Promise.all(Array.from({ length: 10 }, (_, index) => pool.acquire(index % 2 ? web : db)));
    const queued = track(pool.acquire(web));
    await new Promise((resolve) => setImmediate(resolve));
    expect(queued.state).toBe("pending");
    // The queued acquire's timeout keeps Node alive while it waits (idle and lifetime timers are unref'd).
    expect(timers()).toBeGreaterThan(before);
    for (const lease of leases) lease.release();
    await queued.promise;
    leaseOf(queued).release();
    await pool.close();
    expect(timers()).toBe(before);
    expect(transport.openConnections()).toHaveLength(0);
  });
});
