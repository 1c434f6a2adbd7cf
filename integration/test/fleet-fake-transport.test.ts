/**
 * The Fleet over the real Executor and pool with the testing kit's FakeTransport: per-host connect failures, the
 * breaker they open, processes killed by the fleet's abort, and output events, with no network.
 */
import { describe, expect, it } from "vitest";
import { CircuitOpenError, ConnectError, DefaultExecutorConfig, Executor, Fleet } from "@tunnel-sh/core";
import type { FleetEvent } from "@tunnel-sh/core";
import { ConnectionPool, DefaultPoolConfig } from "@tunnel-sh/pool";
import { FakeTransport } from "@tunnel-sh/testing";

const config = DefaultExecutorConfig().with({ maxRetries: 0, breaker: { failureThreshold: 2, cooldown: 60_000 } });

function stack(transport: FakeTransport) {
  const pool = new ConnectionPool(transport, DefaultPoolConfig());
  return { executor: new Executor(pool, config), close: () => pool.close() };
}

describe("Fleet over the Executor with a FakeTransport", () => {
  it("fails the hosts whose connects fail, opens their breakers, and runs the rest", async () => {
    const transport = new FakeTransport({
      connect: (target) => (target.host === "down" ? { error: new ConnectError("connect ECONNREFUSED", { target }) } : {}),
      spawn: { stdout: "ran\n" },
    });
    const { executor, close } = stack(transport);
    try {
      const hosts = [{ host: "up-1" }, { host: "down" }, { host: "up-2" }];
      const operation = { type: "command", cmd: "true" } as const;
      for (let round = 0; round < 2; round++) {
        const report = await new Fleet(executor).run({ hosts, operation });
        expect(report.hosts.map((host) => [host.status, host.error?.code])).toEqual([
          ["ok", undefined],
          ["failed", "CONNECT"],
          ["ok", undefined],
        ]);
      }
      // Two consecutive connection failures opened the breaker: the third fleet fails the host without connecting.
      const connectsBefore = transport.calls.filter((call) => call.type === "connect" && call.target.host === "down").length;
      const third = await new Fleet(executor).run({ hosts, operation });
      expect(third.hosts[1]?.error).toBeInstanceOf(CircuitOpenError);
      expect(transport.calls.filter((call) => call.type === "connect" && call.target.host === "down").length).toBe(connectsBefore);
      expect(third.failed).toBe(1);
    } finally {
      await close();
    }
  });

  it("an abort kills every running process and skips the hosts not started", async () => {
    const transport = new FakeTransport({
      spawn: {
        run: (io) =>
          new Promise((resolve) => {
            io.stdout.write("started\n");
            io.onKill((signal) => resolve({ exitCode: null, signal }));
          }),
      },
    });
    const { executor, close } = stack(transport);
    try {
      const controller = new AbortController();
      const events: FleetEvent[] = [];
      const run = new Fleet(executor).run({
        hosts: ["a", "b", "c", "d"].map((host) => ({ host })),
        operation: { type: "command", cmd: "sleep 600" },
        concurrency: 2,
        signal: controller.signal,
      });
      let outputs = 0;
      for await (const event of run) {
        events.push(event);
        if (event.type === "output" && ++outputs === 2) controller.abort();
      }
      const report = await run;
      expect(report).toMatchObject({ aborted: true, cancelled: 2, skipped: 2 });
      expect(
        transport.calls
          .filter((call) => call.type === "kill")
          .map((call) => call.target.host)
          .sort(),
      ).toEqual(["a", "b"]);
      expect(events.filter((event) => event.type === "started").map((event) => event.type === "started" && event.host)).toEqual(["@a:", "@b:"]);
    } finally {
      await close();
    }
  });
});
