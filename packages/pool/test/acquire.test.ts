import { AbortError, ConnectError, hasCode } from "@tunnel-sh/core";
import type { Lease } from "@tunnel-sh/core";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { BUDGET_RECOVERY_RELEASES, ConnectionPool } from "../src/index.js";
import type { PoolConfig } from "../src/index.js";
import { FakeTransport, RecordingTracer, type ConnectOutcome } from "@tunnel-sh/testing";
import { flush, leaseOf, track } from "./helpers.js";

const web = { host: "web-1", user: "deploy", port: 22 };
const db = { host: "db-1", user: "deploy", port: 22 };
const cache = { host: "cache-1", user: "deploy", port: 22 };

let transport: FakeTransport;
/** Outcomes of the next connects, in order; when empty, connects succeed at once. */
let connects: ConnectOutcome[];
let tracer: RecordingTracer;
let pool: ConnectionPool;

function makePool(config: Partial<PoolConfig> = {}): ConnectionPool {
  pool = new ConnectionPool(transport, { pingAfterIdleMs: Infinity, ...config }, tracer);
  return pool;
}

beforeEach(() => {
  vi.useFakeTimers();
  connects = [];
  transport = new FakeTransport({ connect: () => connects.shift() ?? {} });
  tracer = new RecordingTracer();
});

afterEach(async () => {
  await pool.destroy();
  expect(vi.getTimerCount()).toBe(0);
  vi.useRealTimers();
});

describe("shared connects", () => {
  it("concurrent acquires for a key with no connection share one connect", async () => {
    makePool();
    connects.push({ hold: true });
    const acquires = Array.from({ length: 5 }, () => track(pool.acquire(web)));
    await flush();
    expect(transport.callsOf("connect")).toHaveLength(1);
    expect(acquires.every((acquire) => acquire.state === "pending")).toBe(true);
    transport.held[0]?.resolve();
    await flush();
    const connections = new Set(acquires.map((acquire) => leaseOf(acquire).connection));
    expect(connections.size).toBe(1);
    expect(pool.stats().keys["deploy@web-1:22"]).toMatchObject({ connections: 1, busyChannels: 5, created: 1 });
  });

  it("starts more connects when the waiters need more channels than one connection gives, up to maxConnectingPerKey", async () => {
    makePool({ maxChannelsPerConnection: 2, maxConnectingPerKey: 2, maxConnectionsPerKey: 4 });
    connects.push({ hold: true }, { hold: true }, { hold: true });
    const acquires = Array.from({ length: 5 }, () => track(pool.acquire(web)));
    await flush();
    expect(transport.callsOf("connect")).toHaveLength(2);
    transport.held[0]?.resolve();
    await flush();
    // The first connection serves the two oldest; the fifth waiter now gets a connect of its own.
    expect(acquires.map((acquire) => acquire.state)).toEqual(["resolved", "resolved", "pending", "pending", "pending"]);
    expect(transport.callsOf("connect")).toHaveLength(3);
    transport.held[1]?.resolve();
    transport.held[2]?.resolve();
    await flush();
    expect(acquires.every((acquire) => acquire.state === "resolved")).toBe(true);
    expect(pool.stats().connections).toBe(3);
  });

  it("a failed connect fails exactly the waiters that waited for it, and is not retried", async () => {
    makePool({ maxChannelsPerConnection: 2, maxConnectingPerKey: 2 });
    connects.push({ hold: true }, { hold: true });
    const acquires = Array.from({ length: 4 }, () => track(pool.acquire(web)));
    await flush();
    const failure = new ConnectError("connect ECONNREFUSED", { target: web });
    transport.held[0]?.reject(failure);
    await flush();
    expect(acquires.map((acquire) => acquire.state)).toEqual(["rejected", "rejected", "pending", "pending"]);
    expect(acquires[0]?.error).toBe(failure);
    expect(acquires[1]?.error).toBe(failure);
    transport.held[1]?.resolve();
    await flush();
    expect(acquires.slice(2).every((acquire) => acquire.state === "resolved")).toBe(true);
    expect(transport.callsOf("connect")).toHaveLength(2);
    const connectSpans = tracer.named("tunnel.connect");
    expect(connectSpans).toHaveLength(2);
    expect(connectSpans[0]?.errors).toEqual([failure]);
    expect(connectSpans.every((span) => span.ended)).toBe(true);
    const failedAcquires = tracer.named("tunnel.pool.acquire").filter((span) => span.errors.length > 0);
    expect(failedAcquires).toHaveLength(2);
    expect(failedAcquires[0]?.events.map((event) => event.name)).toEqual(["tunnel.pool.connect_failed"]);
  });

  it("nests the acquire span under the caller's span, and the connect span under the acquire that started it", async () => {
    makePool();
    const operation = tracer.startSpan("tunnel.command");
    (await pool.acquire(web, { parentSpan: operation })).release();
    const [acquireSpan] = tracer.named("tunnel.pool.acquire");
    const [connectSpan] = tracer.named("tunnel.connect");
    expect(acquireSpan?.parent).toBe(operation);
    expect(connectSpan?.parent).toBe(acquireSpan);
    expect(connectSpan?.attributes).toMatchObject({ "tunnel.connection.key": "deploy@web-1:22", "server.address": "web-1", "server.port": 22 });
    // The transport gets the connect span to add its own events; they land on the tracer's connect span.
    transport.callsOf("connect")[0]?.span?.addEvent("tunnel.hop.ready", { "tunnel.hop.index": 0 });
    expect(connectSpan?.events).toEqual([{ name: "tunnel.hop.ready", attributes: { "tunnel.hop.index": 0 } }]);
  });

  it("wraps a transport's non-tunnel error in a ConnectError", async () => {
    makePool();
    connects.push({ error: new Error("boom") });
    const error = await pool.acquire(web).catch((caught: unknown) => caught);
    expect(hasCode(error, "CONNECT")).toBe(true);
    expect((error as Error).cause).toEqual(new Error("boom"));
  });
});

describe("limits", () => {
  it("never opens more than maxConnectionsPerKey; more acquires wait for a release", async () => {
    makePool({ maxChannelsPerConnection: 1, maxConnectionsPerKey: 2 });
    const acquires = Array.from({ length: 3 }, () => track(pool.acquire(web)));
    await flush();
    expect(transport.callsOf("connect")).toHaveLength(2);
    expect(acquires.map((acquire) => acquire.state)).toEqual(["resolved", "resolved", "pending"]);
    const first = leaseOf(acquires[0]!);
    first.release();
    await flush();
    expect(leaseOf(acquires[2]!).connection).toBe(first.connection);
    expect(transport.callsOf("connect")).toHaveLength(2);
  });

  it("uses the lower of the config's channels and the connection's maxChannels", async () => {
    transport = new FakeTransport({ maxChannels: 2 });
    makePool({ maxChannelsPerConnection: 10 });
    const acquires = Array.from({ length: 3 }, () => track(pool.acquire(web)));
    await flush();
    await flush();
    expect(acquires.every((acquire) => acquire.state === "resolved")).toBe(true);
    expect(leaseOf(acquires[2]!).connection).not.toBe(leaseOf(acquires[0]!).connection);
    expect(pool.stats().keys["deploy@web-1:22"]?.connectionDetails.map((detail) => detail.channels)).toEqual([2, 2]);
  });

  it("lends the least-loaded healthy connection", async () => {
    makePool({ maxChannelsPerConnection: 3 });
    expect(await pool.warm(web, 2)).toBe(2);
    const first = await pool.acquire(web);
    const second = await pool.acquire(web);
    expect(second.connection).not.toBe(first.connection);
    first.release();
    const third = await pool.acquire(web);
    expect(third.connection).toBe(first.connection);
  });

  it("caps connections across keys at maxConnections, closing an idle connection to make room", async () => {
    makePool({ maxChannelsPerConnection: 1, maxConnectionsPerKey: 2, maxConnections: 2 });
    const web1 = await pool.acquire(web);
    const web2 = await pool.acquire(web);
    const forDb = track(pool.acquire(db));
    await flush();
    expect(forDb.state).toBe("pending");
    expect(transport.callsOf("connect")).toHaveLength(2);
    web1.release();
    await flush();
    expect(forDb.state).toBe("resolved");
    expect(transport.openConnections()).toHaveLength(2);
    expect(transport.peak).toBe(2);
    expect(pool.stats().keys["deploy@web-1:22"]?.evicted).toEqual({ "make-room": 1 });
    web2.release();
  });
});

describe("fair queue", () => {
  it("grants waiters for one key in FIFO order", async () => {
    makePool({ maxChannelsPerConnection: 1, maxConnectionsPerKey: 1 });
    const holder = await pool.acquire(web);
    const order: number[] = [];
    const waiters = [1, 2, 3].map((index) =>
      pool.acquire(web).then((lease) => {
        order.push(index);
        return lease;
      }),
    );
    await flush();
    holder.release();
    for (const waiter of waiters) (await waiter).release();
    expect(order).toEqual([1, 2, 3]);
  });

  it("when the total limit is hit, the oldest waiter of any key gets the next connection slot", async () => {
    makePool({ maxChannelsPerConnection: 1, maxConnectionsPerKey: 1, maxConnections: 1 });
    const holder = await pool.acquire(web);
    const order: string[] = [];
    const grab = (name: string, target: typeof web): Promise<Lease> =>
      pool.acquire(target).then((lease) => {
        order.push(name);
        return lease;
      });
    const db1 = grab("db1", db);
    const cache1 = grab("cache1", cache);
    const db2 = grab("db2", db);
    await flush();
    holder.release();
    (await db1).release();
    // db2 could reuse db's connection, but cache1 is older: the slot goes to cache1 first.
    (await cache1).release();
    (await db2).release();
    expect(order).toEqual(["db1", "cache1", "db2"]);
    expect(transport.peak).toBe(1);
  });

  it("records each acquire's key, queue position, wait and whether it connected", async () => {
    makePool({ maxChannelsPerConnection: 1, maxConnectionsPerKey: 1 });
    const holder = await pool.acquire(web);
    const waiting = pool.acquire(web);
    await vi.advanceTimersByTimeAsync(250);
    holder.release();
    (await waiting).release();
    const [first, second] = tracer.named("tunnel.pool.acquire");
    expect(first?.attributes).toMatchObject({ "tunnel.connection.key": "deploy@web-1:22", "tunnel.pool.queue_position": 0, "tunnel.pool.connected": true });
    expect(second?.attributes).toMatchObject({ "tunnel.pool.queue_position": 0, "tunnel.pool.connected": false, "tunnel.pool.wait_time": 0.25 });
    expect(first?.ended && second?.ended).toBe(true);
    expect(pool.stats().acquireWaitMs).toEqual({ count: 2, p50: 0, p95: 250, max: 250 });
  });
});

describe("acquire timeout and abort", () => {
  it("rejects with PoolTimeoutError after acquireTimeoutMs and leaves the queue", async () => {
    makePool({ maxChannelsPerConnection: 1, maxConnectionsPerKey: 1, acquireTimeoutMs: 1_000 });
    const holder = await pool.acquire(web);
    const waiting = track(pool.acquire(web));
    await vi.advanceTimersByTimeAsync(999);
    expect(waiting.state).toBe("pending");
    expect(pool.stats().waiting).toBe(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(waiting.state).toBe("rejected");
    expect(hasCode(waiting.error, "POOL_TIMEOUT")).toBe(true);
    expect(pool.stats().waiting).toBe(0);
    expect(tracer.named("tunnel.pool.acquire")[1]?.events.map((event) => event.name)).toEqual(["tunnel.pool.acquire_timeout"]);
    holder.release();
  });

  it("an abort while queued rejects with AbortError, and the next waiter is still served", async () => {
    makePool({ maxChannelsPerConnection: 1, maxConnectionsPerKey: 1 });
    const holder = await pool.acquire(web);
    const controller = new AbortController();
    const aborted = track(pool.acquire(web, { signal: controller.signal }));
    const next = track(pool.acquire(web));
    await flush();
    controller.abort(new Error("user pressed ^C"));
    await flush();
    expect(aborted.state).toBe("rejected");
    expect(aborted.error).toBeInstanceOf(AbortError);
    expect((aborted.error as Error).cause).toEqual(new Error("user pressed ^C"));
    holder.release();
    await flush();
    expect(leaseOf(next).connection).toBe(holder.connection);
    leaseOf(next).release();
  });

  it("an already aborted signal rejects at once without connecting", async () => {
    makePool();
    const error = await pool.acquire(web, { signal: AbortSignal.abort() }).catch((caught: unknown) => caught);
    expect(hasCode(error, "ABORTED")).toBe(true);
    expect(transport.callsOf("connect")).toHaveLength(0);
  });

  it("rejects an acquire past maxWaiting at once with PoolTimeoutError (queue overflow)", async () => {
    makePool({ maxChannelsPerConnection: 1, maxConnectionsPerKey: 1, maxWaiting: 1 });
    const holder = await pool.acquire(web);
    const first = track(pool.acquire(web));
    const overflow = track(pool.acquire(web));
    await flush();
    expect(first.state).toBe("pending");
    expect(overflow.state).toBe("rejected");
    expect(hasCode(overflow.error, "POOL_TIMEOUT")).toBe(true);
    expect(tracer.named("tunnel.pool.acquire")[2]?.events.map((event) => event.name)).toEqual(["tunnel.pool.queue_overflow"]);
    holder.release();
    await flush();
    leaseOf(first).release();
  });

  it("rejects an invalid target before any connect", async () => {
    makePool();
    expect(hasCode(await pool.acquire({ host: "" }).catch((caught: unknown) => caught), "VALIDATION")).toBe(true);
    expect(hasCode(await pool.acquire({ host: "h", port: 70_000 }).catch((caught: unknown) => caught), "VALIDATION")).toBe(true);
    expect(transport.callsOf("connect")).toHaveLength(0);
  });
});

describe("channel refusals", () => {
  it("refused() lowers the connection's budget to the channels in use, so a re-acquire goes to another connection", async () => {
    makePool({ maxChannelsPerConnection: 10 });
    const leases = [await pool.acquire(web), await pool.acquire(web), await pool.acquire(web)];
    const first = leases[0]!.connection;
    leases[2]!.refused?.();
    expect(pool.stats().keys["deploy@web-1:22"]?.connectionDetails[0]).toMatchObject({ channels: 2, busyChannels: 2 });
    const again = await pool.acquire(web);
    expect(again.connection).not.toBe(first);
    expect(transport.callsOf("connect")).toHaveLength(2);
    // Within the lowered budget the connection is still lent.
    leases[0]!.release();
    expect((await pool.acquire(web)).connection).toBe(first);
  });

  it("a refusal with no other channel open lowers the budget to 1; a second one in a row evicts the connection", async () => {
    makePool();
    const lease = await pool.acquire(web);
    lease.refused?.();
    expect(pool.stats().keys["deploy@web-1:22"]?.connectionDetails[0]).toMatchObject({ channels: 1, busyChannels: 0 });
    const again = await pool.acquire(web);
    expect(again.connection).toBe(lease.connection);
    again.refused?.();
    await flush();
    expect(pool.stats().keys["deploy@web-1:22"]).toMatchObject({ connections: 0, evicted: { refused: 1 } });
    expect((await pool.acquire(web)).connection).not.toBe(lease.connection);
  });

  it("a lowered budget rises by one after BUDGET_RECOVERY_RELEASES clean releases, never above the original", async () => {
    makePool({ maxChannelsPerConnection: 3 });
    const key = "deploy@web-1:22";
    const [first, second] = [await pool.acquire(web), await pool.acquire(web)];
    second.refused?.();
    expect(pool.stats().keys[key]?.connectionDetails[0]?.channels).toBe(1);
    first.release();
    const cycle = async (times: number): Promise<void> => {
      for (let index = 0; index < times; index += 1) (await pool.acquire(web)).release();
    };
    await cycle(BUDGET_RECOVERY_RELEASES - 2);
    expect(pool.stats().keys[key]?.connectionDetails[0]?.channels).toBe(1);
    await cycle(1);
    expect(pool.stats().keys[key]?.connectionDetails[0]?.channels).toBe(2);
    await cycle(BUDGET_RECOVERY_RELEASES * 3);
    expect(pool.stats().keys[key]?.connectionDetails[0]?.channels).toBe(3);
    expect(transport.callsOf("connect")).toHaveLength(1);
  });

  it("a lease's second release, destroy or refused is ignored", async () => {
    makePool();
    const lease = await pool.acquire(web);
    const other = await pool.acquire(web);
    lease.release();
    lease.release();
    lease.destroy(new Error("late"));
    lease.refused?.();
    expect(pool.stats()).toMatchObject({ busyChannels: 1, connections: 1 });
    expect(pool.stats().keys["deploy@web-1:22"]?.connectionDetails[0]?.channels).toBe(10);
    other.release();
  });
});
