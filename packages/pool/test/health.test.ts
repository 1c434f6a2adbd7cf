import { ConnectError, hasCode } from "@tunnel-sh/core";
import { FakeConnection, FakeTransport, RecordingTracer, type ConnectOutcome, type FakeOutcome } from "@tunnel-sh/testing";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { ConnectionPool } from "../src/index.js";
import type { PoolConfig } from "../src/index.js";
import { flush, track } from "./helpers.js";

const web = { host: "web-1", user: "deploy", port: 22 };
const key = "deploy@web-1:22";

let transport: FakeTransport;
/** Outcomes of the next connects, in order; when empty, connects succeed at once. */
let connects: ConnectOutcome[];
/** Outcomes of each connection's next pings; when none is left, pings succeed. */
let pingOutcomes: Map<FakeConnection, FakeOutcome[]>;
let tracer: RecordingTracer;
let pool: ConnectionPool;

function makePool(config: Partial<PoolConfig> = {}): ConnectionPool {
  pool = new ConnectionPool(transport, { pingAfterIdleMs: Infinity, idleTimeoutMs: Infinity, maxLifetimeMs: Infinity, ...config }, tracer);
  return pool;
}

function fake(connection: unknown): FakeConnection {
  return connection as FakeConnection;
}

/** How many times the pool pinged `connection`. */
function pingsOf(connection: FakeConnection): number {
  return transport.callsOf("ping").filter((call) => call.connection === connection.id).length;
}

/** The connection's next ping fails with a connection error, or never answers (until its signal aborts). */
function scriptPing(connection: FakeConnection, outcome: "fail" | "hang"): void {
  const scripted: FakeOutcome =
    outcome === "fail" ? { error: new ConnectError("ping failed", { lost: true, target: connection.target }) } : { delayMs: 24 * 3_600_000 };
  pingOutcomes.set(connection, [...(pingOutcomes.get(connection) ?? []), scripted]);
}

beforeEach(() => {
  vi.useFakeTimers();
  connects = [];
  pingOutcomes = new Map();
  transport = new FakeTransport({
    connect: () => connects.shift() ?? {},
    ping: (connection) => pingOutcomes.get(connection)?.shift() ?? {},
  });
  tracer = new RecordingTracer();
});

afterEach(async () => {
  await pool.destroy();
  expect(vi.getTimerCount()).toBe(0);
  vi.useRealTimers();
});

describe("connections that close", () => {
  it("a connection lost with an error is evicted at once and never lent again", async () => {
    makePool();
    const busy = await pool.acquire(web);
    const lost = fake(busy.connection);
    lost.drop();
    expect(pool.stats().keys[key]).toMatchObject({ connections: 0, evicted: { lost: 1 } });
    const next = await pool.acquire(web);
    expect(next.connection).not.toBe(lost);
    // The lease on the lost connection is still returned without harm.
    busy.release();
    expect(pool.stats()).toMatchObject({ connections: 1, busyChannels: 1 });
    const evictSpan = tracer.named("tunnel.pool.evict")[0];
    expect(evictSpan?.attributes).toMatchObject({ "tunnel.connection.key": key, "tunnel.pool.evict_reason": "lost" });
    expect(hasCode(evictSpan?.errors[0], "CONNECTION_LOST")).toBe(true);
    next.release();
  });

  it("a connection that closes without an error is evicted as closed", async () => {
    makePool();
    const lease = await pool.acquire(web);
    lease.release();
    await fake(lease.connection).close();
    expect(pool.stats().keys[key]?.evicted).toEqual({ closed: 1 });
    expect((await pool.acquire(web)).connection).not.toBe(lease.connection);
  });

  it("a connection found closed before lending is evicted even if it never reported it", async () => {
    makePool();
    const lease = await pool.acquire(web);
    lease.release();
    const connection = fake(lease.connection);
    connection.closeWithoutNotice();
    expect((await pool.acquire(web)).connection).not.toBe(connection);
    expect(pool.stats().keys[key]?.evicted).toEqual({ closed: 1 });
  });
});

describe("ping before lending", () => {
  it("pings a connection idle longer than pingAfterIdleMs before lending it, and not one used recently", async () => {
    makePool({ pingAfterIdleMs: 1_000 });
    const first = await pool.acquire(web);
    const connection = fake(first.connection);
    first.release();
    await vi.advanceTimersByTimeAsync(999);
    (await pool.acquire(web)).release();
    expect(pingsOf(connection)).toBe(0);
    await vi.advanceTimersByTimeAsync(1_000);
    const lease = await pool.acquire(web);
    expect(pingsOf(connection)).toBe(1);
    expect(lease.connection).toBe(connection);
    lease.release();
  });

  it("a failed ping evicts the connection and the acquire gets a new one without seeing the error", async () => {
    makePool({ pingAfterIdleMs: 1_000 });
    const first = await pool.acquire(web);
    const connection = fake(first.connection);
    first.release();
    await vi.advanceTimersByTimeAsync(1_000);
    scriptPing(connection, "fail");
    const lease = await pool.acquire(web);
    expect(lease.connection).not.toBe(connection);
    expect(connection.closed).toBe(true);
    expect(pool.stats().keys[key]?.evicted).toEqual({ "ping-failed": 1 });
    lease.release();
  });

  it("a ping that does not answer within pingTimeoutMs counts as failed", async () => {
    makePool({ pingAfterIdleMs: 1_000, pingTimeoutMs: 500 });
    const first = await pool.acquire(web);
    const connection = fake(first.connection);
    first.release();
    await vi.advanceTimersByTimeAsync(1_000);
    scriptPing(connection, "hang");
    const acquire = track(pool.acquire(web));
    await vi.advanceTimersByTimeAsync(499);
    expect(acquire.state).toBe("pending");
    expect(transport.callsOf("connect")).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(acquire.state).toBe("resolved");
    expect(acquire.value?.connection).not.toBe(connection);
    expect(pool.stats().keys[key]?.evicted).toEqual({ "ping-failed": 1 });
    acquire.value?.release();
  });

  it("an acquire with verify pings a connection lent before, however recently, and not one it just opened", async () => {
    makePool();
    const first = await pool.acquire(web, { verify: true });
    const connection = fake(first.connection);
    expect(pingsOf(connection)).toBe(0);
    first.release();
    const checked = await pool.acquire(web, { verify: true });
    expect(checked.connection).toBe(connection);
    expect(pingsOf(connection)).toBe(1);
    checked.release();
    (await pool.acquire(web)).release();
    expect(pingsOf(connection)).toBe(1);
  });

  it("an acquire with verify whose ping fails gets a new connection without seeing the error", async () => {
    makePool();
    const first = await pool.acquire(web);
    const connection = fake(first.connection);
    first.release();
    scriptPing(connection, "fail");
    const lease = await pool.acquire(web, { verify: true });
    expect(lease.connection).not.toBe(connection);
    expect(connection.closed).toBe(true);
    expect(pool.stats().keys[key]?.evicted).toEqual({ "ping-failed": 1 });
    lease.release();
  });

  it("with pingAfterIdleMs 0 pings before every lend except right after connecting, without pinging in a loop", async () => {
    makePool({ pingAfterIdleMs: 0 });
    const first = await pool.acquire(web);
    const connection = fake(first.connection);
    expect(pingsOf(connection)).toBe(0);
    const second = await pool.acquire(web);
    expect(pingsOf(connection)).toBe(1);
    first.release();
    second.release();
    await flush();
    expect(pingsOf(connection)).toBe(1);
    (await pool.acquire(web)).release();
    expect(pingsOf(connection)).toBe(2);
  });

  it("a connection pinged for an acquire that left still expires when idle", async () => {
    makePool({ pingAfterIdleMs: 1_000, idleTimeoutMs: 5_000 });
    const first = await pool.acquire(web);
    const connection = fake(first.connection);
    first.release();
    await vi.advanceTimersByTimeAsync(4_000);
    scriptPing(connection, "hang");
    const controller = new AbortController();
    const leaving = track(pool.acquire(web, { signal: controller.signal }));
    await flush();
    controller.abort();
    // The idle timer fires during the ping and is skipped; the ping then times out and evicts the connection.
    await vi.advanceTimersByTimeAsync(10_000);
    expect(leaving.state).toBe("rejected");
    expect(connection.closed).toBe(true);
    expect(pool.stats().keys[key]?.evicted).toEqual({ "ping-failed": 1 });
  });

  it("a connection that answered a ping for an acquire that left is closed after idleTimeoutMs", async () => {
    makePool({ pingAfterIdleMs: 1_000, idleTimeoutMs: 5_000 });
    const first = await pool.acquire(web);
    const connection = fake(first.connection);
    first.release();
    await vi.advanceTimersByTimeAsync(4_000);
    let answer!: () => void;
    connection.ping = () =>
      new Promise<void>((resolve) => {
        answer = resolve;
      });
    const controller = new AbortController();
    const leaving = track(pool.acquire(web, { signal: controller.signal }));
    await flush();
    controller.abort();
    await vi.advanceTimersByTimeAsync(1_500);
    answer();
    await flush();
    expect(leaving.state).toBe("rejected");
    expect(connection.closed).toBe(false);
    await vi.advanceTimersByTimeAsync(5_000);
    expect(connection.closed).toBe(true);
    expect(pool.stats().keys[key]?.evicted).toEqual({ idle: 1 });
  });

  it("waiters expecting a pinged connection do not start connects of their own", async () => {
    makePool({ pingAfterIdleMs: 1_000 });
    const first = await pool.acquire(web);
    first.release();
    await vi.advanceTimersByTimeAsync(1_000);
    const acquires = [track(pool.acquire(web)), track(pool.acquire(web))];
    await flush();
    expect(acquires.map((acquire) => acquire.value?.connection)).toEqual([first.connection, first.connection]);
    expect(transport.callsOf("connect")).toHaveLength(1);
    expect(pingsOf(fake(first.connection))).toBe(1);
  });
});

describe("idle timeout, lifetime and minimum idle", () => {
  it("closes a connection unused for idleTimeoutMs, not before", async () => {
    makePool({ idleTimeoutMs: 60_000 });
    const lease = await pool.acquire(web);
    await vi.advanceTimersByTimeAsync(120_000);
    expect(pool.stats().connections).toBe(1);
    lease.release();
    await vi.advanceTimersByTimeAsync(59_999);
    expect(fake(lease.connection).closed).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(fake(lease.connection).closed).toBe(true);
    expect(pool.stats().keys[key]).toMatchObject({ connections: 0, evicted: { idle: 1 } });
  });

  it("keeps minIdlePerKey connections past the idle timeout", async () => {
    makePool({ idleTimeoutMs: 1_000, minIdlePerKey: 1 });
    expect(await pool.warm(web, 2)).toBe(2);
    await vi.advanceTimersByTimeAsync(5_000);
    expect(pool.stats().keys[key]).toMatchObject({ connections: 1, idleConnections: 1, evicted: { idle: 1 } });
  });

  it("replaces a lost connection in the background to keep minIdlePerKey", async () => {
    makePool({ minIdlePerKey: 1 });
    (await pool.acquire(web)).release();
    fake(transport.connections[0]).drop();
    await flush();
    expect(transport.callsOf("connect")).toHaveLength(2);
    expect(pool.stats().keys[key]).toMatchObject({ connections: 1, created: 2 });
  });

  it("does not replace a connection lost before it was ever lent (no reconnect loop against a dropping host)", async () => {
    makePool({ minIdlePerKey: 1 });
    await pool.warm(web);
    fake(transport.connections[0]).drop();
    await flush();
    expect(transport.callsOf("connect")).toHaveLength(1);
    expect(pool.stats().keys[key]).toMatchObject({ connections: 0, evicted: { lost: 1 } });
  });

  it("warm() rejects with PoolClosedError when the pool closes while it waits", async () => {
    makePool();
    connects.push({ hold: true });
    const warming = track(pool.warm(web, 1));
    await flush();
    await pool.close();
    await flush();
    expect(hasCode(warming.error, "POOL_CLOSED")).toBe(true);
  });

  it("retires an idle connection at maxLifetimeMs", async () => {
    makePool({ maxLifetimeMs: 10_000 });
    (await pool.acquire(web)).release();
    await vi.advanceTimersByTimeAsync(10_000);
    expect(transport.connections[0]?.closed).toBe(true);
    expect(pool.stats().keys[key]?.evicted).toEqual({ lifetime: 1 });
  });

  it("drains a busy connection at maxLifetimeMs: no new leases, closed once its last lease is returned", async () => {
    makePool({ maxLifetimeMs: 10_000 });
    const busy = await pool.acquire(web);
    await vi.advanceTimersByTimeAsync(10_000);
    const old = fake(busy.connection);
    expect(old.closed).toBe(false);
    const fresh = await pool.acquire(web);
    expect(fresh.connection).not.toBe(old);
    expect(pool.stats().keys[key]?.connectionDetails.map((detail) => detail.state)).toEqual(["draining", "open"]);
    busy.release();
    await flush();
    expect(old.closed).toBe(true);
    expect(pool.stats().keys[key]).toMatchObject({ connections: 1, evicted: { lifetime: 1 } });
    fresh.release();
  });

  it("warm() opens connections up to the count, within maxConnectingPerKey, and rejects with a failed connect", async () => {
    makePool({ maxConnectingPerKey: 1, maxConnectionsPerKey: 3 });
    connects.push({ delayMs: 100 }, { delayMs: 100 }, { delayMs: 100 });
    const warming = track(pool.warm(web, 3));
    await vi.advanceTimersByTimeAsync(100);
    expect(transport.callsOf("connect")).toHaveLength(2);
    expect(transport.peak).toBe(2);
    await vi.advanceTimersByTimeAsync(200);
    expect(warming.value).toBe(3);
    const failure = new ConnectError("refused", { target: { host: "db-1" } });
    connects.push({ error: failure });
    await expect(pool.warm({ host: "db-1" })).rejects.toBe(failure);
  });
});

describe("destroying a lease", () => {
  it("with a connection error closes the connection at once, busy or not", async () => {
    makePool();
    const first = await pool.acquire(web);
    const second = await pool.acquire(web);
    first.destroy(new ConnectError("connection lost", { lost: true, target: web }));
    expect(fake(first.connection).closed).toBe(true);
    expect(pool.stats().keys[key]?.evicted).toEqual({ destroyed: 1 });
    second.release();
  });

  it("with any other reason drains: the connection closes after its other channels finish", async () => {
    makePool();
    const first = await pool.acquire(web);
    const second = await pool.acquire(web);
    first.destroy(new Error("strange output"));
    const connection = fake(first.connection);
    expect(connection.closed).toBe(false);
    expect((await pool.acquire(web)).connection).not.toBe(connection);
    second.release();
    await flush();
    expect(connection.closed).toBe(true);
    expect(pool.stats().keys[key]?.evicted).toEqual({ destroyed: 1 });
  });
});
