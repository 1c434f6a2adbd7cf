import type { Transport } from "@tunnel-sh/core";
import { FakeTransport, checkPoolConcurrencyReport, runPoolConcurrencyCase, type SpawnReplyFunction } from "@tunnel-sh/testing";
import { describe, expect, it } from "vitest";
import { ConnectionPool } from "../src/index.js";
import type { PoolConfig } from "../src/index.js";

/** A short command: `echo ok` prints `ok`, anything else nothing; each runs 1 ms. */
const shortCommand: SpawnReplyFunction = (request) => ({ stdout: request.command.includes("echo ok") ? "ok\n" : "", delayMs: 1 });

/** The testing kit's fake, whose "server" refuses channels past `maxSessions` per connection like sshd. */
function fakeServer(maxSessions?: number): FakeTransport {
  return new FakeTransport({ spawn: shortCommand, ...(maxSessions !== undefined ? { maxSessions } : {}) });
}

/** The case's pool: 4 connections per key, 10 channels per connection, a 120 s acquire timeout, unless `config` says otherwise. */
function poolOf(config: Partial<PoolConfig> = {}) {
  const resolved = { maxConnectionsPerKey: 4, maxChannelsPerConnection: 10, acquireTimeoutMs: 120_000, ...config };
  return { createPool: (transport: Transport) => new ConnectionPool(transport, resolved), maxConnections: resolved.maxConnectionsPerKey };
}

// The end-to-end case against the in-memory fake, whose "server" counts open channels per connection and refuses
// channels past its MaxSessions like sshd. The same case runs against a real sshd in the cross-package suite.
describe("200 concurrent commands through the pool (fake server)", () => {
  it("all succeed with the server's MaxSessions 10, never over the connection limit, all idle at the end", async () => {
    const transport = fakeServer(10);
    const report = await runPoolConcurrencyCase({ transport, ...poolOf(), target: { host: "web-1", user: "deploy", port: 22 }, command: "echo ok" });
    expect(checkPoolConcurrencyReport(report)).toEqual([]);
    expect(report.refusals).toBe(0);
    expect(report.peakConnections).toBe(4);
    expect(Math.max(...transport.connections.map((connection) => connection.peakChannels))).toBe(10);
  });

  it("all succeed with the server's MaxSessions 3 under a pool budget of 10, thanks to refused()", async () => {
    const transport = fakeServer(3);
    const report = await runPoolConcurrencyCase({
      transport,
      target: { host: "web-1", user: "deploy", port: 22 },
      command: "echo ok",
      ...poolOf({ maxChannelsPerConnection: 10 }),
    });
    expect(checkPoolConcurrencyReport(report)).toEqual([]);
    expect(report.refusals).toBeGreaterThan(0);
    expect(report.peakConnections).toBeLessThanOrEqual(4);
    expect(Math.max(...transport.connections.map((connection) => connection.peakChannels))).toBe(3);
    // Each connection learnt its budget: what the server allows, or one more while probing after clean releases.
    const details = Object.values(report.statsAtEnd.keys)[0]?.connectionDetails ?? [];
    expect(details.length).toBeGreaterThan(0);
    for (const detail of details) expect(detail.channels).toBeLessThanOrEqual(4);
  });

  it("the report check catches a handle left behind after close()", async () => {
    const transport = fakeServer();
    const timers: ReturnType<typeof setTimeout>[] = [];
    const leaky = {
      name: transport.name,
      connect: async (...args: Parameters<FakeTransport["connect"]>) => {
        const connection = await transport.connect(...args);
        const close = connection.close.bind(connection);
        connection.close = () => {
          timers.push(setTimeout(() => {}, 60_000));
          return close();
        };
        return connection;
      },
    };
    const report = await runPoolConcurrencyCase({ transport: leaky, ...poolOf(), target: { host: "web-1" }, commands: 5, command: "echo ok" });
    for (const timer of timers) clearTimeout(timer);
    expect(report.handlesLeft).toEqual({ Timeout: 1 });
    expect(checkPoolConcurrencyReport(report)).toEqual(['handles left after close(): {"Timeout":1}']);
  });

  it("the report check catches a failing run", async () => {
    const transport = fakeServer(1);
    const report = await runPoolConcurrencyCase({
      transport,
      target: { host: "web-1" },
      commands: 20,
      command: "echo ok",
      maxAttempts: 1,
      ...poolOf({ maxConnectionsPerKey: 1 }),
    });
    expect(report.successes).toBeLessThan(20);
    expect(checkPoolConcurrencyReport(report)[0]).toMatch(/succeeded; first failure: the channel was refused 1 times/);
  });
});
