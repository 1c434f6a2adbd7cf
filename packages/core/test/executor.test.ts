import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { RecordingTracer, type FakeConnection } from "@tunnel-sh/testing";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { MAX_CHANNEL_REFUSALS } from "../src/channel-budget.js";
import { DefaultExecutorConfig, DevelopmentExecutorConfig, ProductionExecutorConfig } from "../src/config.js";
import type { ExecutorConfig } from "../src/config.js";
import {
  AbortError,
  AuthenticationError,
  ChannelError,
  CircuitOpenError,
  CommandFailedError,
  ConnectError,
  RetriesExhaustedError,
  TimeoutError,
  ValidationError,
} from "../src/errors.js";
import { Executor } from "../src/executor.js";
import { Redactor } from "../src/redact.js";
import type { Connection } from "../src/transport.js";
import { fakePool, type FakePool } from "./support/fake-pool.js";

const fast = DefaultExecutorConfig().with({ retryBackoff: 1, maxRetryDelay: 5, retryJitter: 0, maxRetries: 2 });
const host = { host: "local", user: "tester" };

/**
 * The connection's first `times` spawns (default: every one) fail: "refused", a channel the server refused
 * `delayMs` later (a round trip; the stand-in reads stdin as a real channel's buffer would), or "lost", the
 * connection lost once the command ran. Later spawns run as usual.
 */
function failSpawns(connection: Connection, how: "refused" | "lost", options: { readonly times?: number; readonly delayMs?: number } = {}): void {
  const realSpawn = connection.spawn.bind(connection);
  let calls = 0;
  connection.spawn = (request) => {
    calls += 1;
    if (calls > (options.times ?? Infinity)) return realSpawn(request);
    if (how === "lost") {
      const process = realSpawn(request);
      const lost = new ConnectError("the connection was lost", { lost: true });
      return { ...process, exit: process.exit.then(() => Promise.reject(lost)) };
    }
    const refused = new ChannelError("open failed", { refused: true });
    const failed =
      options.delayMs === undefined ? Promise.reject(refused) : new Promise<never>((_resolve, reject) => setTimeout(() => reject(refused), options.delayMs));
    failed.catch(() => undefined);
    const process = realSpawn({ command: "cat >/dev/null" });
    return { ...process, started: failed, exit: failed };
  };
}

describe("Executor.runCommand", () => {
  it("returns the result with attempts, and a non-zero exit as data", async () => {
    const pool = fakePool();
    const executor = new Executor(pool, fast);
    const result = await executor.runCommand({ ...host, cmd: "echo hi; exit 3" });
    expect(result).toMatchObject({ exitCode: 3, signal: null, stdout: "hi\n", attempts: 1, host: "tester@local:", truncated: false });
    expect(pool.released.length).toBe(1);
  });

  it("throws CommandFailedError carrying the result with check: true", async () => {
    const executor = new Executor(fakePool(), fast);
    const error = await executor.runCommand({ ...host, cmd: "echo bad >&2; exit 4", check: true }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(CommandFailedError);
    expect((error as CommandFailedError).result).toMatchObject({ exitCode: 4, stderr: "bad\n" });
  });

  it("rejects invalid input before touching the pool", async () => {
    const pool = fakePool();
    const executor = new Executor(pool, fast);
    await expect(executor.runCommand({ ...host, cmd: "" })).rejects.toBeInstanceOf(ValidationError);
    await expect(executor.runCommand({ ...host, port: 70000, cmd: "true" })).rejects.toBeInstanceOf(ValidationError);
    await expect(executor.runCommand({ ...host, cmd: "true", env: { "BAD-NAME": "x" } })).rejects.toBeInstanceOf(ValidationError);
    expect(pool.acquired).toHaveLength(0);
  });

  it("retries a connect failure and reports two attempts", async () => {
    const pool = fakePool();
    pool.failNext.push(new ConnectError("connect ECONNREFUSED"));
    const tracer = new RecordingTracer();
    const result = await new Executor(pool, fast, tracer).runCommand({ ...host, cmd: "echo ok" });
    expect(result).toMatchObject({ stdout: "ok\n", attempts: 2 });
    expect(tracer.spans[0]?.events.map((event) => event.name)).toContain("tunnel.retry");
    expect(tracer.spans[0]?.attributes["tunnel.attempts"]).toBe(2);
  });

  it("asks the pool for a connection checked just now before a retry, and only then", async () => {
    const pool = fakePool();
    const verified: boolean[] = [];
    const acquire = pool.acquire.bind(pool);
    pool.acquire = (target, options) => {
      verified.push(options?.verify === true);
      return acquire(target, options);
    };
    pool.failNext.push(new ConnectError("connect ECONNREFUSED"));
    const result = await new Executor(pool, fast).runCommand({ ...host, cmd: "echo ok" });
    expect(result.attempts).toBe(2);
    expect(verified).toEqual([false, true]);
  });

  it("never retries an authentication failure", async () => {
    const pool = fakePool();
    pool.failNext.push(new AuthenticationError("All configured authentication methods failed"));
    const error = await new Executor(pool, fast).runCommand({ ...host, cmd: "true" }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(AuthenticationError);
    expect(pool.acquired).toHaveLength(1);
  });

  it("wraps exhausted retries keeping every attempt's error", async () => {
    const pool = fakePool();
    pool.failNext.push(new ConnectError("one"), new ConnectError("two"), new ConnectError("three"));
    const error = await new Executor(pool, fast).runCommand({ ...host, cmd: "true" }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(RetriesExhaustedError);
    expect((error as RetriesExhaustedError).errors.map((e) => (e as Error).message)).toEqual(["one", "two", "three"]);
  });

  it("hands a refused channel back through lease.refused() and moves on without using an attempt", async () => {
    const pool = fakePool();
    failSpawns(await pool.current(), "refused", { times: 1 });
    const result = await new Executor(pool, fast.with({ maxRetries: 0 })).runCommand({ ...host, cmd: "echo second" });
    expect(result).toMatchObject({ stdout: "second\n", attempts: 1 });
    expect(pool.refusals).toHaveLength(1);
    expect(pool.acquired).toHaveLength(2);
  });

  describe("stdin from a stream", () => {
    const chunks = () => Readable.from([Buffer.from("first,"), Buffer.from("second,"), Buffer.from("third")]);

    it("retries a failed connect with the stream unread: the command gets every byte", async () => {
      const pool = fakePool();
      pool.failNext.push(new ConnectError("connect ECONNREFUSED"));
      const result = await new Executor(pool, fast).runCommand({ ...host, cmd: "cat", stdin: chunks() });
      expect(result).toMatchObject({ stdout: "first,second,third", attempts: 2 });
    });

    it("moves a refused channel to another with the stream unread: the command gets every byte", async () => {
      const pool = fakePool();
      // The refusal comes a round trip later, as a server's does: time enough for a stream piped at once to be read.
      failSpawns(await pool.current(), "refused", { times: 1, delayMs: 50 });
      const result = await new Executor(pool, fast.with({ maxRetries: 0 })).runCommand({ ...host, cmd: "cat", stdin: chunks() });
      expect(result).toMatchObject({ stdout: "first,second,third", attempts: 1 });
      expect(pool.refusals).toHaveLength(1);
    });

    it("never runs another attempt once a process started reading the stream, even for an idempotent command", async () => {
      const pool = fakePool();
      failSpawns(await pool.current(), "lost");
      const error = await new Executor(pool, fast).runCommand({ ...host, cmd: "cat", stdin: chunks(), idempotent: true }).catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(ConnectError);
      expect(pool.acquired).toHaveLength(1);
    });

    it("retries the same idempotent command with bytes as stdin after a lost connection", async () => {
      const pool = fakePool();
      failSpawns(await pool.current(), "lost", { times: 1 });
      const result = await new Executor(pool, fast).runCommand({ ...host, cmd: "cat", stdin: Buffer.from("bytes"), idempotent: true });
      expect(result).toMatchObject({ stdout: "bytes", attempts: 2 });
    });
  });

  it("times out, stops the command and releases the lease", async () => {
    const pool = fakePool();
    const error = await new Executor(pool, fast).runCommand({ ...host, cmd: "sleep 20", timeout: 300 }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(TimeoutError);
    expect(pool.released).toHaveLength(1);
  });

  it("aborts with AbortError and does not retry", async () => {
    const pool = fakePool();
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 100);
    const error = await new Executor(pool, fast).runCommand({ ...host, cmd: "sleep 20", signal: controller.signal }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(AbortError);
    expect(pool.acquired).toHaveLength(1);
  });

  it("fails with a ValidationError naming workingDir when it does not exist", async () => {
    const error = await new Executor(fakePool(), fast)
      .runCommand({ ...host, cmd: "echo should-not-run", workingDir: "/no/such/dir here" })
      .catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(ValidationError);
    expect((error as ValidationError).field).toBe("workingDir");
  });

  it("opens the breaker after repeated connection failures and fails fast", async () => {
    const pool = fakePool();
    const config = fast.with({ maxRetries: 0, breaker: { failureThreshold: 2, cooldown: 60_000 } });
    const executor = new Executor(pool, config);
    pool.failNext.push(new ConnectError("refused"), new ConnectError("refused"));
    await expect(executor.runCommand({ ...host, cmd: "true" })).rejects.toBeInstanceOf(ConnectError);
    await expect(executor.runCommand({ ...host, cmd: "true" })).rejects.toBeInstanceOf(ConnectError);
    await expect(executor.runCommand({ ...host, cmd: "true" })).rejects.toBeInstanceOf(CircuitOpenError);
    expect(pool.acquired).toHaveLength(2);
    expect(executor.stats().breakers["tester@local:"]).toBe("open");
  });

  it("limits concurrent operations to maxConcurrent", async () => {
    const executor = new Executor(fakePool(), fast.with({ maxConcurrent: 2 }));
    const running = [1, 2, 3, 4].map(() => executor.runCommand({ ...host, cmd: "sleep 0.2" }));
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(executor.stats()).toMatchObject({ running: 2, queued: 2 });
    await Promise.all(running);
    expect(executor.stats()).toMatchObject({ running: 0, queued: 0, operations: 4 });
  });

  it("keeps the sudo password off the command line and out of traces", async () => {
    const tracer = new RecordingTracer();
    const pool = fakePool();
    const executor = new Executor(pool, fast, tracer, { redactor: new Redactor() });
    await executor.runCommand({ ...host, cmd: "true", sudo: { password: "hunter2-secret" }, timeout: 5000 }).catch(() => undefined);
    const spawned = pool.transport.callsOf("spawn").map((call) => call.command);
    expect(spawned.length).toBeGreaterThan(0);
    expect(spawned.join("\n")).toContain("sudo -S -p");
    expect(spawned.join("\n")).not.toContain("hunter2-secret");
    expect(JSON.stringify(tracer.spans)).not.toContain("hunter2-secret");
  });

  it("updateConfig applies to new operations", async () => {
    const executor = new Executor(fakePool(), fast);
    executor.updateConfig({ defaultTimeout: 200 });
    await expect(executor.runCommand({ ...host, cmd: "sleep 5" })).rejects.toBeInstanceOf(TimeoutError);
    expect(executor.config.defaultTimeout).toBe(200);
  });
});

describe("the circuit breaker under every shipped preset", () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  /** Drives fake time forward until `promise` settles (backoff sleeps), letting real I/O run in between. */
  async function drive<T>(promise: Promise<T>): Promise<unknown> {
    let done = false;
    const outcome = promise
      .then(
        (value) => value,
        (error: unknown) => error,
      )
      .finally(() => (done = true));
    while (!done) {
      await vi.advanceTimersByTimeAsync(250);
      await new Promise((resolve) => setImmediate(resolve));
    }
    return outcome;
  }

  it.each<[string, () => ExecutorConfig]>([
    ["DefaultExecutorConfig", DefaultExecutorConfig],
    ["DevelopmentExecutorConfig", DevelopmentExecutorConfig],
    ["ProductionExecutorConfig", ProductionExecutorConfig],
  ])("%s: a host that keeps refusing opens it after failureThreshold connect attempts, then one probe closes it", async (_name, preset) => {
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout", "Date"] });
    const config = preset();
    const { failureThreshold, cooldown } = config.breaker;
    const pool = fakePool();
    const executor = new Executor(pool, config);
    for (let i = 0; i < 100; i++) pool.failNext.push(new ConnectError("connect ECONNREFUSED 127.0.0.1:22"));
    const errors: unknown[] = [];
    while (!(errors.at(-1) instanceof CircuitOpenError) && errors.length < 50) {
      errors.push(await drive(executor.runCommand({ ...host, cmd: "true" })));
    }
    expect(errors.at(-1)).toBeInstanceOf(CircuitOpenError);
    // Every failed connect attempt counted, and the attempt that opened the breaker was the last one.
    expect(pool.acquired).toHaveLength(failureThreshold);
    expect(executor.stats().breakers["tester@local:"]).toBe("open");
    // Open: fail fast, without asking the pool (no network I/O).
    await expect(executor.runCommand({ ...host, cmd: "true" })).rejects.toBeInstanceOf(CircuitOpenError);
    expect(pool.acquired).toHaveLength(failureThreshold);
    // After the cooldown exactly one probe goes through; the host is back, so it closes the breaker.
    pool.failNext.length = 0;
    vi.advanceTimersByTime(cooldown);
    const probe = executor.runCommand({ ...host, cmd: "echo probe" });
    await expect(executor.runCommand({ ...host, cmd: "true" })).rejects.toBeInstanceOf(CircuitOpenError);
    // A successful run needs no timer to fire; fake time stands still while it runs.
    expect(await probe).toMatchObject({ stdout: "probe\n", attempts: 1 });
    expect(executor.stats().breakers["tester@local:"]).toBe("closed");
    expect(await executor.runCommand({ ...host, cmd: "echo again" })).toMatchObject({ stdout: "again\n" });
  });
});

const isRemoval = (command: string) => command.includes("rm -rf -- ");
const isUpload = (command: string) => command.includes("mkdir -m 700");

/** The pool's one connection, whose spawns of the commands `refuse` picks are refused: the first `times` of them. */
async function refusing(pool: FakePool, refuse: (command: string) => boolean, times: number): Promise<FakeConnection> {
  const connection = (await pool.current()) as FakeConnection;
  let left = times;
  const spawn = connection.spawn.bind(connection);
  connection.spawn = (request) => {
    if (left > 0 && refuse(request.command)) {
      left -= 1;
      connection.refuseNextSpawns(1);
    }
    return spawn(request);
  };
  return connection;
}

const commands = (pool: FakePool, pick: (command: string) => boolean) =>
  pool.transport
    .callsOf("spawn")
    .map((call) => call.command ?? "")
    .filter(pick);

describe("Executor.runScript", () => {
  let tmp: string;
  beforeAll(async () => {
    tmp = await mkdtemp(join(tmpdir(), "tunnel-executor-test-"));
  });
  afterAll(async () => {
    await rm(tmp, { recursive: true, force: true });
  });
  const leftovers = async () => (await readdir(tmp)).filter((name) => name.startsWith("tunnel-script."));

  it("runs a script with quoted args and env, then removes its folder", async () => {
    const result = await new Executor(fakePool(), fast).runScript({
      ...host,
      content: '#!/bin/sh\nprintf \'%s|\' "$@" "$GREETING"\n',
      args: ["a b", "it's", "$HOME"],
      env: { GREETING: "hello `world`", TMPDIR: tmp },
    });
    expect(result.stdout).toBe("a b|it's|$HOME|hello `world`|");
    expect(await leftovers()).toEqual([]);
  });

  it("removes the folder after a failure, a timeout and an abort", async () => {
    const executor = new Executor(fakePool(), fast);
    const env = { TMPDIR: tmp };
    const failed = await executor.runScript({ ...host, content: "exit 7", env });
    expect(failed.exitCode).toBe(7);
    await expect(executor.runScript({ ...host, content: "sleep 20", env, timeout: 300 })).rejects.toBeInstanceOf(TimeoutError);
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 150);
    await expect(executor.runScript({ ...host, content: "sleep 20", env, signal: controller.signal })).rejects.toBeInstanceOf(AbortError);
    expect(await leftovers()).toEqual([]);
  });

  it("fails with a ValidationError when the interpreter is missing", async () => {
    const error = await new Executor(fakePool(), fast)
      .runScript({ ...host, content: "print(1)", interpreter: "no-such-interpreter-xyz" })
      .catch((caught: unknown) => caught);
    expect((error as ValidationError).field).toBe("interpreter");
  });

  // Each housekeeping command opens a channel: a refused one goes back to the pool while the command moves to another
  // lease, as every other channel of an operation does.
  describe("removing a script's folder", () => {
    it("hands a refused removal's lease back to the pool as refused and removes the folder over another lease", async () => {
      const pool = fakePool();
      await refusing(pool, isRemoval, 1);
      const tracer = new RecordingTracer();
      const result = await new Executor(pool, fast, tracer).runScript({ ...host, content: "echo ran", env: { TMPDIR: tmp } });
      expect(result).toMatchObject({ exitCode: 0, stdout: "ran\n", attempts: 1 });
      expect(await leftovers()).toEqual([]);
      // The operation's lease went back as refused; the removal ran again on a second lease, released at the end.
      expect(pool.refusals).toEqual([1]);
      expect(pool.acquired).toHaveLength(2);
      expect(pool.released).toEqual([2]);
      expect(pool.destroyed).toEqual([]);
      expect(commands(pool, isRemoval)).toHaveLength(2);
      const events = tracer.find("tunnel.script")?.events.map((event) => event.name);
      expect(events).toContain("tunnel.channel.refused");
      expect(events).not.toContain("tunnel.script.cleanup_failed");
    });

    it(`gives up after ${MAX_CHANNEL_REFUSALS} refusals moved to other leases, and the script's result stands`, async () => {
      const pool = fakePool();
      await refusing(pool, isRemoval, Number.POSITIVE_INFINITY);
      const tracer = new RecordingTracer();
      const result = await new Executor(pool, fast, tracer).runScript({ ...host, content: "echo ran", env: { TMPDIR: tmp } });
      expect(result).toMatchObject({ exitCode: 0, stdout: "ran\n", attempts: 1 });
      // Each refusal went back to the pool, up to the bound; the one past it ends the cleanup: no wait, no other connection.
      expect(pool.refusals).toHaveLength(MAX_CHANNEL_REFUSALS);
      expect(pool.acquired).toHaveLength(MAX_CHANNEL_REFUSALS + 1);
      expect(commands(pool, isRemoval)).toHaveLength(MAX_CHANNEL_REFUSALS + 1);
      expect(commands(pool, (command) => command.includes("pkill"))).toEqual([]);
      const span = tracer.find("tunnel.script");
      expect(span?.events.filter((event) => event.name === "tunnel.channel.refused")).toHaveLength(MAX_CHANNEL_REFUSALS);
      expect(span?.events.find((event) => event.name === "tunnel.script.cleanup_failed")?.attributes).toEqual({ "error.type": "CHANNEL" });
      await rm(join(tmp, (await leftovers())[0] ?? "none"), { recursive: true, force: true });
    });

    it("when the upload and then its cleanup are refused, hands back the one refused lease and runs again on the next", async () => {
      const pool = fakePool();
      await refusing(pool, (command) => isUpload(command) || isRemoval(command), 2);
      const result = await new Executor(pool, fast).runScript({ ...host, content: "echo ran", env: { TMPDIR: tmp } });
      expect(result).toMatchObject({ exitCode: 0, stdout: "ran\n", attempts: 1 });
      expect(await leftovers()).toEqual([]);
      // The first lease went back as refused once; the script ran on the lease its cleanup moved to, released at the end.
      expect(pool.refusals).toEqual([1]);
      expect(pool.acquired).toHaveLength(2);
      expect(pool.released).toEqual([2]);
      expect(commands(pool, isUpload)).toHaveLength(2);
    });
  });
});
