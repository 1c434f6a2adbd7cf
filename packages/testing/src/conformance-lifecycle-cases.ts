/**
 * The conformance cases about a connection's life: channels at the same time, a dropped connection, aborts, `kill()`
 * with and without a named signal, and `close()`. Registered by `describeTransportConformance`, in its order.
 */
import { PassThrough } from "node:stream";
import { TunnelError, runProcess } from "@tunnel-sh/core";
import {
  eventually,
  firstLine,
  killLeftovers,
  lines,
  localProcess,
  outcome,
  serverSideProcess,
  type LocalProcess,
  type SuiteConnections,
} from "./conformance-helpers.js";
import { isAlive } from "./process-table.js";
import type { TestRunner } from "./transport-conformance.js";

/** Register the lifecycle cases; `signals` says whether the signals group is on (else one case checks it is declared off). */
export function describeLifecycleCases(suite: SuiteConnections, runner: TestRunner, signals: boolean): void {
  const { it, expect } = runner;

  it("runs maxChannels commands on one connection at the same time", async () => {
    const connection = await suite.fresh();
    const count = Math.min(connection.maxChannels, 32);
    const inputs = Array.from({ length: count }, () => new PassThrough());
    const ready = new Set<number>();
    const runs = inputs.map((stdin, index) =>
      runProcess(connection, {
        command: `echo ready-${index}; read line; echo "got-$line-${index}"`,
        stdin,
        timeoutMs: 60_000,
        onStdout: (text) => {
          if (text.includes(`ready-${index}`)) ready.add(index);
        },
      }),
    );
    // Every command has started before any may finish: they really run at once.
    const allStarted = await eventually(() => ready.size === count, 30_000);
    for (const stdin of inputs) stdin.end("go\n");
    const results = await Promise.all(runs);
    expect(allStarted, `${ready.size} of ${count} commands started at once`).toBe(true);
    results.forEach((result, index) => {
      expect(result).toMatchObject({ exitCode: 0, stdout: `ready-${index}\ngot-go-${index}\n` });
    });
    await suite.expectStillUsable(connection);
  }, 90_000);

  it("fails with a typed error within seconds when the connection drops mid-command", async () => {
    const connection = await suite.fresh();
    const closes: unknown[] = [];
    connection.onClose((error) => closes.push(error));
    let shell: LocalProcess | undefined;
    let refusal: string | undefined;
    try {
      // Killing the server-side process that serves the connection (sshd's user child) drops the connection.
      const running = runProcess(connection, {
        command: "echo $PPID $$; sleep 60; echo not-reached",
        onStdout: lines((line) => {
          const [parent = 0, pid = 0] = line.split(" ").map(Number);
          if (shell !== undefined || !pid) return;
          shell = localProcess(pid);
          const server = serverSideProcess(pid, parent);
          if (server) process.kill(server, "SIGKILL");
          else {
            refusal = `the process serving the connection (${parent}) is the test process or its ancestor`;
            killLeftovers(shell);
          }
        }),
      });
      const { error, ms } = await outcome(running);
      expect(refusal).toBeUndefined();
      expect(TunnelError.is(error), `a TunnelError, got ${String(error)}`).toBe(true);
      expect(["CONNECTION_LOST", "CONNECT"]).toContain((error as TunnelError).code);
      expect(ms).toBeLessThan(10_000);
      expect(await eventually(() => connection.closed, 5_000)).toBe(true);
      expect(closes.length).toBe(1);
      expect(TunnelError.is(closes[0])).toBe(true);
    } finally {
      killLeftovers(shell);
    }
  }, 30_000);

  it("stops the remote process when the request's signal aborts, and the connection stays usable", async () => {
    const connection = await suite.usable();
    const controller = new AbortController();
    let sleeper: LocalProcess | undefined;
    let shell: LocalProcess | undefined;
    try {
      const running = runProcess(connection, {
        command: "sleep 300 & echo $! $$; wait",
        signal: controller.signal,
        onStdout: lines((line) => {
          const [sleepPid, shellPid] = line.split(" ").map(Number);
          sleeper ??= localProcess(sleepPid);
          shell ??= localProcess(shellPid);
          controller.abort();
        }),
      });
      const { error, ms } = await outcome(running);
      expect((error as TunnelError | undefined)?.code).toBe("ABORTED");
      expect(ms).toBeLessThan(10_000);
      const pid = sleeper?.pid ?? 0;
      expect(pid).toBeGreaterThan(0);
      expect(await eventually(() => !isAlive(pid), 5_000), `sleep ${pid} is gone`).toBe(true);
    } finally {
      killLeftovers(sleeper, shell);
    }
    await suite.expectStillUsable(connection);
  }, 30_000);

  it("stops the remote process on kill(), and the connection stays usable", async () => {
    const connection = await suite.usable();
    const remote = connection.spawn({ command: "sleep 300 & echo $! $$; wait" });
    remote.stdin.end();
    remote.stderr.resume();
    const [sleepPid = 0, shellPid] = (await firstLine(remote, 10_000)).split(" ").map(Number);
    const sleeper = localProcess(sleepPid);
    const shell = localProcess(shellPid);
    try {
      expect(isAlive(sleepPid)).toBe(true);
      await remote.kill();
      const { error } = await outcome(remote.exit, 10_000);
      expect(error === undefined || TunnelError.is(error), `exit settles with a status or a TunnelError: ${String(error)}`).toBe(true);
      expect(await eventually(() => !isAlive(sleepPid), 5_000), `sleep ${sleepPid} is gone`).toBe(true);
    } finally {
      killLeftovers(sleeper, shell);
    }
    await suite.expectStillUsable(connection);
  }, 30_000);

  it("closes: idempotent, tells onClose once without an error, fails running and later processes", async () => {
    const connection = await suite.fresh();
    const closes: unknown[] = [];
    connection.onClose((error) => closes.push(error));
    const remote = connection.spawn({ command: "echo $$; sleep 60" });
    remote.stdin.end();
    remote.stderr.resume();
    const shell = localProcess(Number(await firstLine(remote, 10_000)));
    try {
      await connection.close();
      await connection.close();
      expect(connection.closed).toBe(true);
      const { error } = await outcome(remote.exit);
      expect((error as TunnelError | undefined)?.code).toBe("CONNECTION_LOST");
      expect(closes).toEqual([undefined]);
      const after = connection.spawn({ command: "echo never" });
      const started = await outcome(after.started);
      const exited = await outcome(after.exit);
      expect(TunnelError.is(started.error)).toBe(true);
      expect(TunnelError.is(exited.error)).toBe(true);
    } finally {
      killLeftovers(shell);
    }
  });

  if (signals) {
    it("delivers the signal kill() names: a trap for SIGINT runs and sets the exit code", async () => {
      const connection = await suite.usable();
      expect(connection.capabilities.signals).toBe(true);
      const remote = connection.spawn({ command: "trap 'echo got-INT; exit 7' INT; echo $$; while :; do sleep 1; done" });
      remote.stdin.end();
      remote.stderr.resume();
      const output: Buffer[] = [];
      remote.stdout.on("data", (chunk: Buffer) => output.push(chunk));
      const shell = localProcess(Number(await firstLine(remote, 10_000)));
      try {
        await remote.kill("SIGINT");
        const { error } = await outcome(remote.exit);
        expect(error).toBeUndefined();
        expect(await remote.exit).toEqual({ exitCode: 7, signal: null });
        expect(Buffer.concat(output).toString("utf8")).toContain("got-INT\n");
      } finally {
        killLeftovers(shell);
      }
      await suite.expectStillUsable(connection);
    }, 30_000);
  } else {
    it("declares no signals (the signals group is off)", async () => {
      expect((await suite.usable()).capabilities.signals).toBe(false);
    });
  }
}
