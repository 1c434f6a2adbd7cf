import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { ConnectionPool } from "../src/index.js";
import { FakeTransport, type ConnectOutcome } from "@tunnel-sh/testing";
import { flush, track } from "./helpers.js";

const web = { host: "web-1", user: "deploy", port: 22 };
const db = { host: "db-1", user: "deploy", port: 22 };

let transport: FakeTransport;
/** Outcomes of the next connects, in order; when empty, connects succeed at once. */
let connects: ConnectOutcome[];
let pool: ConnectionPool;

beforeEach(() => {
  vi.useFakeTimers();
  connects = [];
  transport = new FakeTransport({ connect: () => connects.shift() ?? {} });
  pool = new ConnectionPool(transport, { maxChannelsPerConnection: 2, maxConnectionsPerKey: 2, pingAfterIdleMs: Infinity });
});

afterEach(async () => {
  await pool.destroy();
  expect(vi.getTimerCount()).toBe(0);
  vi.useRealTimers();
});

describe("stats()", () => {
  it("counts connections, busy channels, idle connections, waiters, connects, creations and evictions per key and in total", async () => {
    const webLeases = [await pool.acquire(web), await pool.acquire(web), await pool.acquire(web), await pool.acquire(web)];
    const waiting = track(pool.acquire(web));
    (await pool.acquire(db)).release();
    expect(await pool.warm(db, 2)).toBe(2);
    transport.connections[3]?.drop();
    await vi.advanceTimersByTimeAsync(1_500);
    const stats = pool.stats();
    expect(stats.keys["deploy@web-1:22"]).toMatchObject({
      connections: 2,
      busyChannels: 4,
      idleConnections: 0,
      waiting: 1,
      created: 2,
      evicted: {},
      connecting: 0,
    });
    expect(stats.keys["deploy@db-1:22"]).toMatchObject({ connections: 1, busyChannels: 0, idleConnections: 1, waiting: 0, created: 2, evicted: { lost: 1 } });
    expect(stats).toMatchObject({
      state: "open",
      connections: 3,
      busyChannels: 4,
      idleConnections: 1,
      waiting: 1,
      created: 4,
      evicted: { lost: 1 },
      connecting: 0,
    });
    expect(stats.keys["deploy@web-1:22"]?.connectionDetails).toEqual([
      { id: 1, state: "open", busyChannels: 2, channels: 2, uses: 2, ageMs: 1_500 },
      { id: 2, state: "open", busyChannels: 2, channels: 2, uses: 2, ageMs: 1_500 },
    ]);
    webLeases[0]?.release();
    await flush();
    expect(waiting.state).toBe("resolved");
    expect(pool.stats().keys["deploy@web-1:22"]?.connectionDetails[0]?.uses).toBe(3);
  });

  it("shows connects in flight", async () => {
    connects.push({ hold: true });
    const waiting = track(pool.acquire(web));
    await flush();
    expect(pool.stats()).toMatchObject({ connecting: 1, connections: 0, waiting: 1 });
    transport.held[0]?.resolve();
    await flush();
    expect(pool.stats()).toMatchObject({ connecting: 0, connections: 1, waiting: 0, busyChannels: 1 });
    waiting.value?.release();
  });

  it("reports acquire waits as count, p50, p95 and max in milliseconds", async () => {
    const single = new ConnectionPool(transport, { maxChannelsPerConnection: 1, maxConnectionsPerKey: 1 });
    const first = await single.acquire(web);
    const second = single.acquire(web);
    await vi.advanceTimersByTimeAsync(100);
    first.release();
    const third = single.acquire(web);
    await vi.advanceTimersByTimeAsync(300);
    (await second).release();
    (await third).release();
    expect(single.stats().acquireWaitMs).toEqual({ count: 3, p50: 100, p95: 300, max: 300 });
    await single.close();
  });
});
