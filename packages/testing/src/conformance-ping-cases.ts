/**
 * The ping cases of the conformance suite: `Connection.ping()` is the pool's health check, so it must answer on a
 * live connection and fail with a connection error on a dead one (closed here, or dropped by the server).
 */
import { TunnelError } from "@tunnel-sh/core";
import { firstLine, killLeftovers, localProcess, outcome, serverSideProcess, type LocalProcess, type SuiteConnections } from "./conformance-helpers.js";
import type { TestRunner } from "./transport-conformance.js";

/** The codes of a connection error: a dead connection's ping rejects with one of them. */
const CONNECTION_CODES = ["CONNECTION_LOST", "CONNECT"];

export function describePingCases(suite: SuiteConnections, runner: TestRunner): void {
  const { describe, it, expect } = runner;

  describe("ping", () => {
    it("answers on a live connection, one after another and several at once", async () => {
      const connection = await suite.usable();
      for (let round = 0; round < 3; round++) expect((await outcome(connection.ping(), 15_000)).error).toBeUndefined();
      const together = await Promise.all(Array.from({ length: 5 }, () => outcome(connection.ping(), 15_000)));
      expect(together.map((result) => result.error)).toEqual([undefined, undefined, undefined, undefined, undefined]);
      await suite.expectStillUsable(connection);
    });

    it("rejects with AbortError when its signal aborts, before or while it runs, and the connection stays healthy", async () => {
      const connection = await suite.usable();
      const before = await outcome(connection.ping({ signal: AbortSignal.abort() }));
      expect((before.error as TunnelError | undefined)?.code).toBe("ABORTED");
      // Aborted as soon as it was asked, before any answer can have come back over the network.
      const controller = new AbortController();
      const pinging = connection.ping({ signal: controller.signal });
      controller.abort();
      const during = await outcome(pinging);
      expect((during.error as TunnelError | undefined)?.code).toBe("ABORTED");
      expect(connection.closed).toBe(false);
      expect((await outcome(connection.ping(), 15_000)).error).toBeUndefined();
      await suite.expectStillUsable(connection);
    });

    it("rejects with a connection error once the connection is closed", async () => {
      const connection = await suite.fresh();
      await connection.close();
      const { error } = await outcome(connection.ping());
      expect(TunnelError.is(error), `a TunnelError, got ${String(error)}`).toBe(true);
      expect(CONNECTION_CODES).toContain((error as TunnelError).code);
    });

    it("rejects with a connection error once the server dropped the connection", async () => {
      const connection = await suite.fresh();
      const remote = connection.spawn({ command: "echo $PPID $$; sleep 60" });
      remote.stdin.end();
      remote.stderr.resume();
      let shell: LocalProcess | undefined;
      try {
        const [parent = 0, pid = 0] = (await firstLine(remote, 10_000)).split(" ").map(Number);
        shell = localProcess(pid);
        const server = serverSideProcess(pid, parent);
        expect(server, `the process serving the connection (${parent}) is not the test process or its ancestor`).toBeDefined();
        if (server) process.kill(server, "SIGKILL");
        // The transport has seen the session end (its process fails), as a pool's idle connection would have.
        expect(TunnelError.is((await outcome(remote.exit)).error)).toBe(true);
        const { error } = await outcome(connection.ping());
        expect(TunnelError.is(error), `a TunnelError, got ${String(error)}`).toBe(true);
        expect(CONNECTION_CODES).toContain((error as TunnelError).code);
      } finally {
        killLeftovers(shell);
      }
    }, 30_000);
  });
}
