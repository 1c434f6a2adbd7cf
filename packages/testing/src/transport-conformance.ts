/**
 * The behaviour every tunnel transport must show, as one suite that each transport package runs against its own
 * servers. It takes the test runner's functions as parameters, so it works with any runner that has
 * `describe`/`it`/`expect`/`beforeAll`/`afterAll` (vitest's are passed in directly):
 *
 * @example
 * // describe, it, expect, beforeAll, afterAll: vitest's own functions
 * describeTransportConformance("ssh2 against sshd", async () => {
 *   const sshd = await startSshd();
 *   return {
 *     transport: new Ssh2Transport({ identityFile: sshd.clientKeyPath, knownHostsFile: [sshd.knownHostsPath] }),
 *     target: { host: sshd.host, port: sshd.port, user: sshd.users.plain.name },
 *     teardown: () => sshd.stop(),
 *   };
 * }, { describe, it, expect, beforeAll, afterAll });
 *
 * The target must be a user with a POSIX shell on a server running on this machine: some cases look for the
 * remote processes in this machine's /proc (to prove that a killed process is gone) and kill the server-side
 * process that serves a connection (to drop it).
 *
 * The cases come in groups. Spawning, exit statuses, streams, channels, aborts, drops, close and ping are every
 * transport's; `pty`, `signals` and `transfer` follow the optional abilities of `ConnectionCapabilities`, and the
 * caller says which ones the transport offers (the fourth argument; each defaults to `true`). A group that is on
 * first checks that connections declare its capability; a group that is off is replaced by one case checking that
 * they do not, so the flags and the declared capabilities cannot drift apart.
 * @example describeTransportConformance("busybox-only server", setup, runner, { pty: false });
 */
import { createHash, randomBytes } from "node:crypto";
import { PassThrough } from "node:stream";
import { TunnelError, rejectUnknownOptions, runProcess, type Connection, type Target, type Transport } from "@tunnel-sh/core";
import {
  MiB,
  collect,
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
import { describePingCases } from "./conformance-ping-cases.js";
import { describeTransferCases } from "./conformance-transfer-cases.js";
import { isAlive } from "./process-table.js";

export interface ConformanceContext {
  readonly transport: Transport;
  /** A user with a POSIX shell on a server on this machine (its processes are visible in /proc here). */
  readonly target: Target;
  /** Called once after the suite (stop the server). */
  readonly teardown?: () => Promise<void>;
}

/** The assertions the suite uses; vitest's and jest's `expect` fit. */
export interface ConformanceAssertion {
  toBe(expected: unknown): void;
  toEqual(expected: unknown): void;
  toMatchObject(expected: object): void;
  toContain(expected: unknown): void;
  toMatch(expected: string | RegExp): void;
  toBeGreaterThan(expected: number): void;
  toBeGreaterThanOrEqual(expected: number): void;
  toBeLessThan(expected: number): void;
  toBeLessThanOrEqual(expected: number): void;
  toBeUndefined(): void;
  toBeDefined(): void;
  readonly not: ConformanceAssertion;
}

type Body = () => Promise<void> | void;

/** The test runner's functions (vitest's, passed in as they are). */
export interface TestRunner {
  readonly describe: (name: string, body: () => void) => unknown;
  readonly it: (name: string, body: Body, timeout?: number) => unknown;
  readonly expect: (actual: unknown, message?: string) => ConformanceAssertion;
  readonly beforeAll: (body: Body, timeout?: number) => unknown;
  readonly afterAll: (body: Body, timeout?: number) => unknown;
}

/**
 * Which capability-dependent groups of cases run; each is on unless set to `false`. Each name is the
 * `ConnectionCapabilities` member the group needs, which the transport's connections must declare to match.
 */
export interface ConformanceGroups {
  /** Pseudo-terminals on request (`capabilities.pty`). */
  readonly pty?: boolean;
  /** `kill(signal)` delivers the named signal to the remote process group (`capabilities.signals`). */
  readonly signals?: boolean;
  /** `upload`/`download`, and core's transfers on top of them (`capabilities.transfer`). */
  readonly transfer?: boolean;
}

const GROUPS = Object.keys({ pty: true, signals: true, transfer: true } satisfies Record<keyof ConformanceGroups, true>);

/**
 * Register the conformance suite for one transport. `setup` runs once (in `beforeAll`); every connection the suite
 * opens is closed in `afterAll`, then `teardown` runs. `groups` turns capability-dependent groups off; an unknown
 * key is a `ConfigError` naming it.
 */
export function describeTransportConformance(name: string, setup: () => Promise<ConformanceContext>, runner: TestRunner, groups: ConformanceGroups = {}): void {
  rejectUnknownOptions(groups, GROUPS, "describeTransportConformance groups");
  const { describe, it, expect, beforeAll, afterAll } = runner;
  const on = { pty: groups.pty !== false, signals: groups.signals !== false, transfer: groups.transfer !== false };

  describe(`transport conformance: ${name}`, () => {
    let context: ConformanceContext | undefined;
    let shared: Connection | undefined;
    const opened: Connection[] = [];

    const fresh = async (): Promise<Connection> => {
      if (!context) throw new Error("the conformance setup failed");
      const connection = await context.transport.connect(context.target);
      opened.push(connection);
      return connection;
    };
    /** The suite's shared connection; a new one if a case left it closed. */
    const usable = async (): Promise<Connection> => {
      if (!shared || shared.closed) shared = await fresh();
      return shared;
    };
    /** A case leaves its connection usable (or closed): it still runs a command. */
    const expectStillUsable = async (connection: Connection) => {
      if (connection.closed) return;
      const result = await runProcess(connection, { command: "echo still-usable", timeoutMs: 15_000 });
      expect(result).toMatchObject({ exitCode: 0, stdout: "still-usable\n" });
    };

    const suite: SuiteConnections = {
      context: () => {
        if (!context) throw new Error("the conformance setup failed");
        return context;
      },
      fresh,
      usable,
      expectStillUsable,
    };

    beforeAll(async () => {
      context = await setup();
    }, 120_000);

    afterAll(async () => {
      await Promise.all(opened.map((connection) => connection.close()));
      await context?.teardown?.();
    }, 120_000);

    it("connects to the target", async () => {
      const connection = await usable();
      expect(connection.closed).toBe(false);
      expect(connection.transport).toBe(context?.transport.name);
      expect(connection.target.host).toBe(context?.target.host);
      expect(connection.maxChannels).toBeGreaterThanOrEqual(1);
      expect(typeof connection.capabilities.pty).toBe("boolean");
      expect(typeof connection.capabilities.signals).toBe("boolean");
      expect(typeof connection.capabilities.transfer).toBe("boolean");
    });

    it("runs echo and collects its output", async () => {
      const result = await runProcess(await usable(), { command: "echo hello tunnel" });
      expect(result).toMatchObject({ exitCode: 0, signal: null, stdout: "hello tunnel\n", stderr: "", truncated: false });
    });

    it("reports exit codes 0, 1, 42 and 255 as data", async () => {
      const connection = await usable();
      for (const code of [0, 1, 42, 255]) {
        const result = await runProcess(connection, { command: `echo code-${code}; exit ${code}` });
        expect(result, `exit ${code}`).toMatchObject({ exitCode: code, signal: null, stdout: `code-${code}\n` });
      }
    });

    it("keeps stderr apart from stdout", async () => {
      const result = await runProcess(await usable(), { command: "echo out; echo err >&2; echo more" });
      expect(result).toMatchObject({ exitCode: 0, stdout: "out\nmore\n", stderr: "err\n" });
    });

    it("reports death by a signal as { exitCode: null, signal }", async () => {
      const connection = await usable();
      for (const signal of ["TERM", "KILL"]) {
        const result = await runProcess(connection, { command: `kill -${signal} $$; echo not-reached` });
        expect(result, `kill -${signal}`).toMatchObject({ exitCode: null, signal: `SIG${signal}`, stdout: "" });
      }
      await expectStillUsable(connection);
    });

    it("streams 50 MiB of output to the listener while collecting only up to the cap", async () => {
      let seen = 0;
      const result = await runProcess(await usable(), {
        command: `head -c ${50 * MiB} /dev/zero`,
        maxOutputBytes: MiB,
        onStdout: (text) => (seen += text.length),
      });
      expect(result.exitCode).toBe(0);
      expect(seen).toBe(50 * MiB);
      expect(result.truncated).toBe(true);
      expect(result.stdout.length).toBe(MiB);
    }, 120_000);

    it("completes a command whose output is past the cap on both streams", async () => {
      const result = await runProcess(await usable(), {
        command: `head -c ${10 * MiB} /dev/zero >&2; head -c ${10 * MiB} /dev/zero; echo`,
        maxOutputBytes: 1024,
        timeoutMs: 60_000,
      });
      expect(result).toMatchObject({ exitCode: 0, truncated: true });
      expect(result.stdout.length).toBe(1024);
      expect(result.stderr.length).toBe(1024);
    }, 90_000);

    it("is binary-safe: all 256 byte values come out, and go in and out, unchanged", async () => {
      const connection = await usable();
      const every = Buffer.from(Array.from({ length: 256 }, (_, byte) => byte));
      const format = [...every].map((byte) => `\\${byte.toString(8).padStart(3, "0")}`).join("");
      const printer = connection.spawn({ command: `printf '${format}'` });
      printer.stdin.end();
      const printed = await collect(printer);
      expect(printed.status).toEqual({ exitCode: 0, signal: null });
      expect(printed.stdout.equals(every)).toBe(true);

      const payload = Buffer.concat(Array.from({ length: 256 }, () => every));
      const echo = connection.spawn({ command: "cat" });
      const collecting = collect(echo);
      echo.stdin.end(payload);
      const echoed = await collecting;
      expect(echoed.status).toEqual({ exitCode: 0, signal: null });
      expect(echoed.stdout.length).toBe(payload.length);
      expect(echoed.stdout.equals(payload)).toBe(true);
    });

    it("passes stdin from a string and from a large Buffer, then EOF", async () => {
      const connection = await usable();
      expect(await runProcess(connection, { command: "cat" })).toMatchObject({ exitCode: 0, stdout: "" });
      const text = "first line\nsecond 'line' with $dollar and ünïcödé\n";
      expect(await runProcess(connection, { command: "cat", stdin: text })).toMatchObject({ exitCode: 0, stdout: text });
      const large = randomBytes(8 * MiB);
      const digest = createHash("sha256").update(large).digest("hex");
      const result = await runProcess(connection, { command: "sha256sum | cut -d' ' -f1", stdin: large });
      expect(result).toMatchObject({ exitCode: 0, stdout: `${digest}\n` });
    }, 60_000);

    if (on.pty) {
      it("allocates a pty on request: tty succeeds and lines end in \\r\\n", async () => {
        const connection = await usable();
        expect(connection.capabilities.pty).toBe(true);
        const withPty = await runProcess(connection, { command: "tty && echo one && echo two", pty: true });
        expect(withPty.exitCode).toBe(0);
        expect(withPty.stdout).toMatch(/\/dev\/\S+\r\none\r\ntwo\r\n$/);
        const without = await runProcess(connection, { command: "tty" });
        expect(without.exitCode).not.toBe(0);
      });
    } else {
      it("declares no pty (the pty group is off)", async () => {
        expect((await usable()).capabilities.pty).toBe(false);
      });
    }

    it("runs maxChannels commands on one connection at the same time", async () => {
      const connection = await fresh();
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
      await expectStillUsable(connection);
    }, 90_000);

    it("fails with a typed error within seconds when the connection drops mid-command", async () => {
      const connection = await fresh();
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
      const connection = await usable();
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
      await expectStillUsable(connection);
    }, 30_000);

    it("stops the remote process on kill(), and the connection stays usable", async () => {
      const connection = await usable();
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
      await expectStillUsable(connection);
    }, 30_000);

    it("closes: idempotent, tells onClose once without an error, fails running and later processes", async () => {
      const connection = await fresh();
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

    if (on.signals) {
      it("delivers the signal kill() names: a trap for SIGINT runs and sets the exit code", async () => {
        const connection = await usable();
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
        await expectStillUsable(connection);
      }, 30_000);
    } else {
      it("declares no signals (the signals group is off)", async () => {
        expect((await usable()).capabilities.signals).toBe(false);
      });
    }

    if (on.transfer) describeTransferCases(suite, runner);
    else {
      it("declares no transfers (the transfer group is off), and upload and download reject with a TunnelError", async () => {
        const connection = await usable();
        expect(connection.capabilities.transfer).toBe(false);
        const upload = await outcome(connection.upload({ localPath: "/dev/null", remotePath: "/tmp/tunnel-never" }));
        const download = await outcome(connection.download({ remotePath: "/dev/null", localPath: "/tmp/tunnel-never" }));
        expect(TunnelError.is(upload.error), `upload: ${String(upload.error)}`).toBe(true);
        expect(TunnelError.is(download.error), `download: ${String(download.error)}`).toBe(true);
      });
    }

    describePingCases(suite, runner);
  });
}
