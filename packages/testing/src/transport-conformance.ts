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
import { TunnelError, rejectUnknownOptions, runProcess, type Connection, type Target, type Transport } from "@tunnel-sh/core";
import { outcome, type SuiteConnections } from "./conformance-helpers.js";
import { describeLifecycleCases } from "./conformance-lifecycle-cases.js";
import { describePingCases } from "./conformance-ping-cases.js";
import { describeProcessCases } from "./conformance-process-cases.js";
import { describeTransferCases } from "./conformance-transfer-cases.js";

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

    describeProcessCases(suite, runner, on.pty);
    describeLifecycleCases(suite, runner, on.signals);

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
