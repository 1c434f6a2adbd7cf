/**
 * The fault matrix: every network and server fault tunnel promises to survive, injected for real against OpenSSH
 * sshd, over both transports. For each fault: the typed error the caller gets (code, phase, retryable), within a
 * bounded time; retries only where the rules allow, with the expected attempts; and recovery — once the fault is
 * gone, the next operation succeeds on a fresh connection.
 *
 * Faults come from the fault proxy (reset, FIN, black hole), from killing the sshd process serving a connection,
 * from crashing and restarting sshd, from sshd limits (MaxSessions, MaxStartups), from credentials and known_hosts,
 * and from nft rules inside a private network namespace (SYN drop, random packet loss).
 *
 * Every outcome is recorded and compared, at the end, with the table in docs/faults.md.
 */
import { generateKeyPairSync, randomBytes } from "node:crypto";
import { rm, writeFile } from "node:fs/promises";
import { connect, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { startFaultProxy, startSshd, freePort } from "@tunnel-sh/testing";
import type { FaultProxy, Sshd } from "@tunnel-sh/testing";
import { descendantsOf, eventually, processTable, remoteCommandsUnder, sshdChildServing } from "./support/fault-processes.js";
import { compareWithTable, observe, readFaultTable, renderRows } from "./support/fault-table.js";
import type { FaultObservation } from "./support/fault-table.js";
import { startNetnsLab } from "./support/netns-lab.js";
import type { NetnsLab } from "./support/netns-lab.js";
import { makeStack, TRANSPORTS } from "./support/transports.js";
import type { Stack, StackOptions } from "./support/transports.js";

const observations: FaultObservation[] = [];

/** Keepalive for the black-hole case: 1 s × 3, so a dead link shows within about 4–6 s. */
const KEEPALIVE = { keepaliveInterval: 1_000, keepaliveCountMax: 3 } as const;
/** Handshake budget for the stalled-handshake and dropped-SYN cases. */
const READY_TIMEOUT = 1_500;

type Keys = { readonly clientKeyPath: string; readonly knownHostsPath: string };

let sshd: Sshd;
let twoSessions: Sshd;
let twoStartups: Sshd;
let proxy: FaultProxy;
let proxyKeys: Keys;
let lab: NetnsLab;
let scratch: string;

/** An ed25519 public key in OpenSSH's one-line form that no server here holds. */
function strangerHostKey(): string {
  const der = generateKeyPairSync("ed25519").publicKey.export({ type: "spki", format: "der" });
  const raw = der.subarray(der.length - 32);
  const field = (data: Buffer) => Buffer.concat([Buffer.from([0, 0, 0, data.length]), data]);
  return `ssh-ed25519 ${Buffer.concat([field(Buffer.from("ssh-ed25519")), field(raw)]).toString("base64")}`;
}

/** A TCP connection that connected and got sshd's banner, then says nothing: an unauthenticated "startup". */
function holdStartup(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: "127.0.0.1", port });
    socket.once("data", () => resolve(socket));
    socket.once("error", reject);
  });
}

beforeAll(async () => {
  // UsePAM no: a wrong password fails in ~0.2 s instead of PAM's 3.5 s delay.
  sshd = await startSshd({ usePam: false });
  twoSessions = await startSshd({ usePam: false, maxSessions: 2 });
  twoStartups = await startSshd({ usePam: false, extraConfig: ["MaxStartups 2"] });
  proxy = await startFaultProxy({ target: { host: sshd.host, port: sshd.port } });
  scratch = join(sshd.dir, "faults");
  await rm(scratch, { recursive: true, force: true });
  await import("node:fs/promises").then((fs) => fs.mkdir(scratch, { recursive: true }));
  proxyKeys = { clientKeyPath: sshd.clientKeyPath, knownHostsPath: join(scratch, "known_hosts.proxy") };
  await writeFile(proxyKeys.knownHostsPath, `[${proxy.host}]:${proxy.port} ${sshd.hostPublicKey}\n`);
  lab = await startNetnsLab(sshd);
}, 120_000);

afterAll(async () => {
  await lab?.stop();
  await proxy?.close();
  await sshd?.stop();
  await twoSessions?.stop();
  await twoStartups?.stop();
});

describe.each(TRANSPORTS)("faults over %s", (name) => {
  const stacks: Stack[] = [];
  const user = () => sshd.users.plain.name;
  const direct = () => ({ host: sshd.host, port: sshd.port, user: user() });
  const viaProxy = () => ({ host: proxy.host, port: proxy.port, user: user() });
  const inLab = () => ({ host: lab.host, port: lab.port, user: user() });

  const stackFor = (keys: Keys, options: StackOptions = {}): Stack => {
    const stack = makeStack(name, keys, options);
    stacks.push(stack);
    return stack;
  };

  afterEach(async () => {
    proxy.ok();
    await lab.clear();
    await Promise.all(stacks.splice(0).map((stack) => stack.close()));
  });

  /** Run `operation`, returning how it ended, the attempts it took and how long (from `from()`, default its start). */
  async function measure(stack: Stack, operation: () => Promise<unknown>, from?: () => number): Promise<{ outcome: unknown; attempts: number; ms: number }> {
    const before = stack.executor.stats().attempts;
    const started = performance.now();
    const outcome = await operation().catch((caught: unknown) => caught);
    const ms = performance.now() - (from?.() ?? started);
    return { outcome, attempts: stack.executor.stats().attempts - before, ms };
  }

  function record(fault: string, measured: { outcome: unknown; attempts: number; ms: number }): FaultObservation {
    const observation = observe(fault, name, measured.outcome, measured.attempts, measured.ms);
    observations.push(observation);
    return observation;
  }

  /** The next command works, on a connection opened after the fault. */
  async function recovers(stack: Stack, target: { host: string; port: number; user: string }): Promise<void> {
    const created = stack.pool.stats().created;
    const result = await stack.executor.runCommand({ ...target, cmd: "echo recovered", timeout: 20_000 });
    expect(result).toMatchObject({ exitCode: 0, stdout: "recovered\n" });
    expect(stack.pool.stats().created).toBe(created + 1);
    expect(stack.pool.stats().busyChannels).toBe(0);
  }

  /**
   * A command that prints `started`, then ticks for up to 30 s (a tick on a dead channel ends it with SIGPIPE).
   * `onStarted` runs once the first line arrived, i.e. while the command runs. Resolves to the fault's time.
   */
  function ticking(stack: Stack, target: object, marker: string, onStarted: () => void | Promise<void>) {
    let faultAt = 0;
    let fired = false;
    const operation = () =>
      stack.executor.runCommand({
        ...(target as { host: string }),
        cmd: `echo started; for i in $(seq 1 150); do echo tick; sleep 0.2; done # ${marker}`,
        timeout: 60_000,
        onStdout: (chunk) => {
          if (fired || !chunk.includes("started")) return;
          fired = true;
          faultAt = performance.now();
          void onStarted();
        },
      });
    return { operation, faultAt: () => faultAt };
  }

  const marker = (fault: string) => `tunnel-fault-${fault}-${name}-${randomBytes(4).toString("hex")}`;

  /** Ends whatever a fault left running on the server for `mark` (a session sshd still thinks is alive). */
  async function sweep(listenerPid: number, mark: string): Promise<void> {
    for (const entry of processTable().filter((candidate) => candidate.args.includes(mark))) {
      try {
        process.kill(entry.pid, "SIGKILL");
      } catch {
        // gone
      }
    }
    expect(await eventually(() => remoteCommandsUnder(listenerPid, user()).filter((entry) => entry.args.includes(mark)).length === 0, 20_000)).toBe(true);
  }

  it("connection reset mid-command: CONNECTION_LOST at once, not re-run; the next command gets a fresh connection", async () => {
    const stack = stackFor(proxyKeys);
    await stack.executor.runCommand({ ...viaProxy(), cmd: "true" });
    const mark = marker("reset");
    const run = ticking(stack, viaProxy(), mark, () => proxy.reset());
    const observed = record("connection reset mid-command", await measure(stack, run.operation, run.faultAt));
    expect(observed).toMatchObject({ code: "CONNECTION_LOST", retryable: "true", attempts: 1 });
    expect(observed.ms).toBeLessThan(5_000);
    await recovers(stack, viaProxy());
    await sweep(sshd.pid, mark);
  });

  it("connection reset mid-command, idempotent: retried once on a fresh connection and succeeds", async () => {
    const stack = stackFor(proxyKeys);
    let resets = 0;
    const mark = marker("reset-idempotent");
    const short = () =>
      stack.executor.runCommand({
        ...viaProxy(),
        cmd: `echo started; sleep 1; echo done # ${mark}`,
        idempotent: true,
        timeout: 30_000,
        onStdout: (chunk) => {
          if (chunk.includes("started") && resets++ === 0) proxy.reset();
        },
      });
    const measured = await measure(stack, short);
    const observed = record("connection reset mid-command, idempotent request", measured);
    expect(observed).toMatchObject({ outcome: "succeeds", attempts: 2 });
    expect(measured.outcome).toMatchObject({ exitCode: 0, stdout: "started\ndone\n", attempts: 2 });
    expect(stack.pool.stats().created).toBe(2);
  });

  it("FIN mid-command: CONNECTION_LOST at once; the next command gets a fresh connection", async () => {
    const stack = stackFor(proxyKeys);
    await stack.executor.runCommand({ ...viaProxy(), cmd: "true" });
    const mark = marker("fin");
    const run = ticking(stack, viaProxy(), mark, () => proxy.fin());
    const observed = record("connection closed (FIN) mid-command", await measure(stack, run.operation, run.faultAt));
    expect(observed).toMatchObject({ code: "CONNECTION_LOST", attempts: 1 });
    await recovers(stack, viaProxy());
    await sweep(sshd.pid, mark);
  });

  it("the sshd process serving the connection killed mid-command: CONNECTION_LOST; the next command gets a fresh connection", async () => {
    const stack = stackFor(sshd);
    await stack.executor.runCommand({ ...direct(), cmd: "true" });
    const mark = marker("kill-child");
    let killed: number | undefined;
    const run = ticking(stack, direct(), mark, () => {
      const child = sshdChildServing(mark);
      killed = child?.pid;
      if (child) process.kill(child.pid, "SIGKILL");
    });
    const observed = record("sshd session process killed mid-command", await measure(stack, run.operation, run.faultAt));
    expect(killed).toBeGreaterThan(0);
    expect(observed).toMatchObject({ code: "CONNECTION_LOST", attempts: 1 });
    await recovers(stack, direct());
    await sweep(sshd.pid, mark);
  });

  it("sshd crash mid-command, then down, then restarted: lost, then refused with retries, then recovered", async () => {
    const stack = stackFor(sshd);
    await stack.executor.runCommand({ ...direct(), cmd: "true" });
    const mark = marker("crash");
    const run = ticking(stack, direct(), mark, () => sshd.crash());
    const lost = record("sshd crash mid-command", await measure(stack, run.operation, run.faultAt));
    expect(lost).toMatchObject({ code: "CONNECTION_LOST", attempts: 1 });

    const down = record("sshd down (connection refused)", await measure(stack, () => stack.executor.runCommand({ ...direct(), cmd: "true" })));
    expect(down).toMatchObject({ code: "RETRIES_EXHAUSTED", lastAttempt: "CONNECT", attempts: 3 });

    await sshd.restart();
    await recovers(stack, direct());
  });

  it("black-holed link mid-command: keepalive (1 s × 3) reports CONNECTION_LOST; the next command gets a fresh connection", async () => {
    const stack = stackFor(proxyKeys, { transport: KEEPALIVE });
    await stack.executor.runCommand({ ...viaProxy(), cmd: "true" });
    const mark = marker("blackhole");
    const run = ticking(stack, viaProxy(), mark, () => proxy.blackhole());
    const observed = record("black-holed link mid-command (keepalive 1 s × 3)", await measure(stack, run.operation, run.faultAt));
    expect(observed).toMatchObject({ code: "CONNECTION_LOST", attempts: 1 });
    expect(observed.ms).toBeGreaterThan(2_000);
    proxy.ok();
    await recovers(stack, viaProxy());
    await sweep(sshd.pid, mark);
  }, 60_000);

  it("handshake stall (TCP up, no SSH banner): a retryable CONNECT per attempt within readyTimeout; recovers once the link answers", async () => {
    const stack = stackFor(proxyKeys, { transport: { readyTimeout: READY_TIMEOUT } });
    proxy.blackhole();
    const observed = record("handshake stall (readyTimeout 1.5 s)", await measure(stack, () => stack.executor.runCommand({ ...viaProxy(), cmd: "true" })));
    expect(observed).toMatchObject({ code: "RETRIES_EXHAUSTED", lastAttempt: "CONNECT", attempts: 3 });
    proxy.ok();
    await recovers(stack, viaProxy());
  }, 60_000);

  it("connect timeout (SYN dropped in a network namespace): a retryable CONNECT per attempt; recovers once the rule is gone", async () => {
    const stack = stackFor(lab, { transport: { readyTimeout: READY_TIMEOUT } });
    await lab.dropAll();
    const observed = record(
      "connect timeout (SYN dropped, readyTimeout 1.5 s)",
      await measure(stack, () => stack.executor.runCommand({ ...inLab(), cmd: "true" })),
    );
    expect(observed).toMatchObject({ code: "RETRIES_EXHAUSTED", lastAttempt: "CONNECT", attempts: 3 });
    expect(await lab.dropped()).toBeGreaterThan(0);
    await lab.clear();
    await recovers(stack, inLab());
  }, 60_000);

  it("MaxSessions 2 with a pool budget of 10 channels: every command still succeeds", async () => {
    const stack = stackFor(twoSessions, { pool: { maxChannelsPerConnection: 10 }, transport: { maxChannels: 10 } });
    const target = { host: twoSessions.host, port: twoSessions.port, user: user() };
    let worst = 0;
    const measured = await measure(stack, async () => {
      const results = await Promise.all(Array.from({ length: 5 }, (_, index) => stack.executor.runCommand({ ...target, cmd: `sleep 0.3; echo ${index}` })));
      results.forEach((result, index) => expect(result).toMatchObject({ exitCode: 0, stdout: `${index}\n` }));
      worst = Math.max(...results.map((result) => result.attempts));
      return undefined;
    });
    // A refused channel is retried before its command starts: the table gives the worst command's attempts.
    const observed = observe("MaxSessions 2 exceeded (pool budget 10)", name, measured.outcome, worst, measured.ms);
    observations.push(observed);
    expect(observed.outcome).toBe("succeeds");
    expect(stack.pool.stats().busyChannels).toBe(0);
  }, 60_000);

  it("MaxStartups 2 exceeded: a retryable CONNECT per attempt; recovers once the held startups go", async () => {
    const stack = stackFor(twoStartups);
    const target = { host: twoStartups.host, port: twoStartups.port, user: user() };
    const held = [await holdStartup(twoStartups.port), await holdStartup(twoStartups.port)];
    try {
      const observed = record("MaxStartups 2 exceeded", await measure(stack, () => stack.executor.runCommand({ ...target, cmd: "true" })));
      expect(observed).toMatchObject({ code: "RETRIES_EXHAUSTED", lastAttempt: "CONNECT", attempts: 3 });
    } finally {
      for (const socket of held) socket.destroy();
    }
    await recovers(stack, target);
  }, 60_000);

  it("authentication failure: AUTHENTICATION at once, never retried; the right password then logs in", async () => {
    const stack = stackFor(sshd, { transport: { passwordOnly: true, password: "not-the-password-123" } });
    const observed = record("authentication failure (wrong password)", await measure(stack, () => stack.executor.runCommand({ ...direct(), cmd: "true" })));
    expect(observed).toMatchObject({ code: "AUTHENTICATION", phase: "auth", retryable: "false", attempts: 1 });
    const good = stackFor(sshd, { transport: { passwordOnly: true, password: sshd.users.plain.password } });
    await recovers(good, direct());
  });

  it("host key changed: HOST_KEY at once, never retried; the same stack connects once known_hosts is right", async () => {
    const knownHostsPath = join(scratch, `known_hosts.changed-${name}`);
    await writeFile(knownHostsPath, `[${sshd.host}]:${sshd.port} ${strangerHostKey()}\n`);
    const stack = stackFor({ clientKeyPath: sshd.clientKeyPath, knownHostsPath });
    const observed = record("host key changed", await measure(stack, () => stack.executor.runCommand({ ...direct(), cmd: "true" })));
    expect(observed).toMatchObject({ code: "HOST_KEY", retryable: "false", attempts: 1 });
    await writeFile(knownHostsPath, `${sshd.knownHostsLine}\n`);
    await recovers(stack, direct());
  });

  it("DNS failure (no-such-host.invalid): a CONNECT error within seconds; the same executor still reaches a good host", async () => {
    const stack = stackFor(sshd);
    const observed = record(
      "DNS failure (no-such-host.invalid)",
      await measure(stack, () => stack.executor.runCommand({ host: "no-such-host.invalid", user: user(), cmd: "true" })),
    );
    expect(["CONNECT", "RETRIES_EXHAUSTED"]).toContain(observed.code);
    await recovers(stack, direct());
  });

  it("connection refused (a closed loopback port): retried, then RETRIES_EXHAUSTED; the same executor still reaches a good host", async () => {
    const stack = stackFor(sshd);
    const port = await freePort();
    const observed = record(
      "connection refused (closed port)",
      await measure(stack, () => stack.executor.runCommand({ host: "127.0.0.1", port, user: user(), cmd: "true" })),
    );
    expect(observed).toMatchObject({ code: "RETRIES_EXHAUSTED", lastAttempt: "CONNECT", attempts: 3 });
    await recovers(stack, direct());
  });

  it("random packet loss (10 % each way) during a transfer: the file arrives whole and verified", async () => {
    const stack = stackFor(lab);
    const size = 4 * 1024 * 1024;
    const source = join(scratch, `loss-${name}.bin`);
    await writeFile(source, randomBytes(size));
    const destination = join(tmpdir(), `tunnel-fault-loss-${name}-${process.pid}.bin`);
    await stack.executor.runCommand({ ...inLab(), cmd: "true" });
    await lab.loss(10);
    try {
      const measured = await measure(stack, () =>
        stack.executor.transferFile({ ...inLab(), direction: "upload", source, destination, verify: "sha256", timeout: 120_000 }),
      );
      record("random packet loss 10 % during an upload", measured);
      expect(measured.outcome).toMatchObject({ bytes: size, files: 1, verified: true });
      expect(await lab.dropped()).toBeGreaterThan(0);
    } finally {
      await lab.clear();
      await rm(destination, { force: true });
    }
  }, 150_000);

  it("leaves no command of the test user and no ssh process behind", async () => {
    // A session of a connection lost to a fault ends once sshd notices the loss, which may take it a moment.
    await eventually(() => remoteCommandsUnder(sshd.pid, user()).length === 0, 10_000);
    expect(remoteCommandsUnder(sshd.pid, user())).toEqual([]);
    expect(descendantsOf(process.pid).filter((entry) => /^(\S*\/)?ssh /.test(entry.args))).toEqual([]);
  });
});

describe("docs/faults.md", () => {
  it("lists exactly the faults observed above, with their codes, phases, attempts and detection bounds", () => {
    if (process.env.TUNNEL_WRITE_FAULT_TABLE) {
      console.log(renderRows(observations));
      return;
    }
    expect(compareWithTable(observations, readFaultTable())).toEqual([]);
  });
});
