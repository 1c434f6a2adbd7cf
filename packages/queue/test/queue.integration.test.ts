/**
 * The queue on a real redis-server and a real sshd, with two worker processes (test/fixtures/worker.mjs, each an
 * Executor with its own pool and ssh2 transport): fleets through the queue, live output, secrets that stay out of
 * Redis, cancellation that stops the remote process, one run per job id, workers killed in the middle of a command,
 * and the producer's trace context in the worker's spans.
 */
import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chmod, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Redis } from "ioredis";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { AbortError, Fleet, OutcomeUnknownError, TunnelError, ValidationError } from "@tunnel-sh/core";
import type { FleetEvent } from "@tunnel-sh/core";
import { redisServerSupport, remoteProcesses, startRedisServer, startSshd, sshdSupport } from "@tunnel-sh/testing";
import type { RedisServer, Sshd } from "@tunnel-sh/testing";
import { QueueProducer } from "../src/index.js";
import type { QueueProducerOptions } from "../src/index.js";

const redisSupport = redisServerSupport();
const sshSupport = sshdSupport();
const available = redisSupport.available && sshSupport.available;
const QUEUE = "tunnel-test";
const LOCK_DURATION = 2_000;
const STALLED_INTERVAL = 1_000;
const workerScript = fileURLToPath(new URL("./fixtures/worker.mjs", import.meta.url));

type Line = Record<string, unknown>;

interface WorkerProcess {
  readonly name: string;
  readonly child: ChildProcess;
  readonly lines: Line[];
  exited: boolean;
}

async function eventually(check: () => boolean | Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (await check()) return true;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return check();
}

describe("redis-server and sshd availability", () => {
  it("has a runnable redis-server and sshd (in CI both are required)", () => {
    expect(available || !process.env["CI"]).toBe(true);
  });
});

// Without redis-server or sshd (outside CI) the suite is left out; in CI the support checks above throw instead.
if (available)
  describe("the queue on redis-server with two worker processes", () => {
    let redis: RedisServer;
    let sshd: Sshd;
    let work: string;
    let settingsPath: string;
    const workers: WorkerProcess[] = [];
    const producers: QueueProducer[] = [];
    let workerCount = 0;

    const target = () => ({ host: sshd.host, port: sshd.port, user: sshd.users.plain.name });
    const producer = (options: Partial<QueueProducerOptions> = {}) => {
      const made = new QueueProducer({ redis: redis.url, queue: QUEUE, ...options });
      producers.push(made);
      return made;
    };

    async function startWorker(): Promise<WorkerProcess> {
      const name = `worker-${++workerCount}`;
      await writeFile(
        settingsPath.replace("NAME", name),
        JSON.stringify({
          redis: redis.url,
          queue: QUEUE,
          name,
          concurrency: 2,
          clientKeyPath: sshd.clientKeyPath,
          knownHostsPath: sshd.knownHostsPath,
          secretsFile: join(work, "secrets.json"),
          lockDuration: LOCK_DURATION,
          stalledInterval: STALLED_INTERVAL,
        }),
      );
      const child = spawn(process.execPath, [workerScript, settingsPath.replace("NAME", name)], { stdio: ["ignore", "pipe", "pipe"] });
      const worker: WorkerProcess = { name, child, lines: [], exited: false };
      let buffer = "";
      child.stdout?.on("data", (chunk: Buffer) => {
        buffer += chunk.toString();
        let newline;
        while ((newline = buffer.indexOf("\n")) !== -1) {
          const line = buffer.slice(0, newline);
          buffer = buffer.slice(newline + 1);
          try {
            worker.lines.push(JSON.parse(line) as Line);
          } catch {
            worker.lines.push({ text: line });
          }
        }
      });
      let stderr = "";
      child.stderr?.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
      child.on("exit", () => (worker.exited = true));
      const ready = await eventually(() => worker.exited || worker.lines.some((line) => line.ready === name), 30_000);
      if (!ready || worker.exited) throw new Error(`worker ${name} did not start: ${stderr}`);
      workers.push(worker);
      return worker;
    }

    const alive = () => workers.filter((worker) => !worker.exited);
    const started = (worker: WorkerProcess, since = 0) => worker.lines.slice(since).filter((line) => line.phase === "started");

    async function kill(worker: WorkerProcess): Promise<void> {
      worker.child.kill("SIGKILL");
      await eventually(() => worker.exited, 10_000);
    }

    /** Keep two live workers for the next test. */
    async function topUp(): Promise<void> {
      while (alive().length < 2) await startWorker();
    }

    beforeAll(async () => {
      redis = await startRedisServer();
      sshd = await startSshd();
      work = await mkdtemp(join(tmpdir(), "tunnel-queue-"));
      // The test users append to run logs in here.
      await chmod(work, 0o755);
      const secrets = join(work, "secrets.json");
      await writeFile(secrets, JSON.stringify({ "pwsudo-password": sshd.users.pwsudo.password }), { mode: 0o600 });
      // The worker's settings file holds no secret: secrets are in their own 0600 file.
      settingsPath = join(work, "settings-NAME.json");
      await topUp();
    });
    afterEach(async () => {
      await topUp();
    });
    afterAll(async () => {
      await Promise.all(producers.map((made) => made.close()));
      for (const worker of workers) if (!worker.exited) worker.child.kill("SIGTERM");
      await Promise.all(workers.map((worker) => eventually(() => worker.exited, 10_000)));
      await redis?.stop();
      await sshd?.stop();
      if (work) await rm(work, { recursive: true, force: true });
    });

    /** A file the plain user may append to, as a record of how many times a command ran. */
    async function runLog(): Promise<string> {
      const { execFileSync } = await import("node:child_process");
      const path = join(work, `runs-${randomBytes(6).toString("hex")}.log`);
      await writeFile(path, "");
      execFileSync("chown", [sshd.users.plain.name, path]);
      return path;
    }
    const runsIn = async (path: string) => (await readFile(path, "utf8")).split("\n").filter((line) => line !== "").length;

    it("runs a fleet through the workers: results and live output come back, and both workers take part", async () => {
      const [first, second] = alive();
      const marks = [first?.lines.length ?? 0, second?.lines.length ?? 0];
      const events: FleetEvent[] = [];
      const report = await new Fleet(producer()).run({
        hosts: Array.from({ length: 8 }, (_, index) => ({ ...target(), name: `host-${index + 1}` })),
        operation: (host) => ({ type: "command", cmd: 'echo "out $N"; echo "err $N" >&2; sleep 0.5', env: { N: host.name ?? "" } }),
        concurrency: 8,
        onEvent: (event) => events.push(event),
      });
      expect(report).toMatchObject({ ok: 8, failed: 0 });
      for (const host of report.hosts) expect(host.result).toMatchObject({ exitCode: 0, stdout: `out ${host.name}\n`, stderr: `err ${host.name}\n` });
      const output = events.filter((event) => event.type === "output").map((event) => `${event.host} ${event.stream} ${event.text}`);
      expect(output.sort()).toEqual(
        Array.from({ length: 8 }, (_, index) => [`host-${index + 1} stderr err host-${index + 1}\n`, `host-${index + 1} stdout out host-${index + 1}\n`])
          .flat()
          .sort(),
      );
      expect(started(first as WorkerProcess, marks[0]).length).toBeGreaterThan(0);
      expect(started(second as WorkerProcess, marks[1]).length).toBeGreaterThan(0);
      expect(started(first as WorkerProcess, marks[0]).length + started(second as WorkerProcess, marks[1]).length).toBe(8);
    });

    it("a job names its sudo secret, the worker resolves it, and no password ever enters Redis", async () => {
      const sudoTarget = { host: sshd.host, port: sshd.port, user: sshd.users.pwsudo.name };
      const result = await producer({ sudoSecret: "pwsudo-password" }).runCommand({ ...sudoTarget, cmd: "id -un", sudo: true });
      expect(result).toMatchObject({ exitCode: 0, stdout: "root\n" });

      const client = producer();
      const counts = async () => {
        const inspect = new Redis(redis.url);
        try {
          return await inspect.dbsize();
        } finally {
          inspect.disconnect();
        }
      };
      const before = await counts();
      expect(() => client.runCommand({ ...sudoTarget, cmd: "id -un", sudo: { password: sshd.users.pwsudo.password } })).toThrow(ValidationError);
      expect(await counts()).toBe(before);

      const inspect = new Redis(redis.url);
      try {
        const dump: string[] = [];
        for (const key of await inspect.keys("*")) {
          const type = await inspect.type(key);
          dump.push(key);
          if (type === "string") dump.push(String(await inspect.get(key)));
          else if (type === "hash") dump.push(JSON.stringify(await inspect.hgetall(key)));
          else if (type === "list") dump.push(JSON.stringify(await inspect.lrange(key, 0, -1)));
          else if (type === "set") dump.push(JSON.stringify(await inspect.smembers(key)));
          else if (type === "zset") dump.push(JSON.stringify(await inspect.zrange(key, 0, -1)));
          else if (type === "stream") dump.push(JSON.stringify(await inspect.xrange(key, "-", "+")));
        }
        const everything = dump.join("\n");
        expect(everything).toContain("pwsudo-password");
        expect(everything).not.toContain(sshd.users.pwsudo.password);
      } finally {
        inspect.disconnect();
      }
    });

    it("cancelling a request cancels its job on the worker running it, and the remote process is gone", async () => {
      const marker = `queue-cancel-${randomBytes(6).toString("hex")}`;
      const controller = new AbortController();
      let ready = false;
      const pending = producer().runCommand({
        ...target(),
        cmd: `echo ready; sleep 600; echo ${marker}`,
        signal: controller.signal,
        onStdout: (text) => {
          if (text.includes("ready")) ready = true;
        },
      });
      pending.catch(() => undefined);
      expect(await eventually(() => ready, 20_000)).toBe(true);
      const withMarker = async () => (await remoteProcesses(sshd.users.plain.name)).filter((process) => process.args.includes(marker)).length;
      expect(await withMarker()).toBeGreaterThan(0);
      controller.abort();
      const error = await pending.catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(AbortError);
      expect(await eventually(async () => (await withMarker()) === 0, 10_000)).toBe(true);
    });

    it("submitting the same run id twice runs the job once, and both submissions get its result", async () => {
      const log = await runLog();
      const request = { ...target(), cmd: `echo run >> ${log}; sleep 0.5; echo done` };
      const [first, second] = await Promise.all([producer({ runId: "deploy-1" }).runCommand(request), producer({ runId: "deploy-1" }).runCommand(request)]);
      expect(first).toMatchObject({ exitCode: 0, stdout: "done\n" });
      expect(second).toEqual(first);
      // Later, from a third producer: still the same job, still run once.
      expect(await producer({ runId: "deploy-1" }).runCommand(request)).toEqual(first);
      expect(await runsIn(log)).toBe(1);
      // Another run id is another job.
      await producer({ runId: "deploy-2" }).runCommand(request);
      expect(await runsIn(log)).toBe(2);
    });

    it("a worker killed in the middle of a command that is not idempotent: reported unknown, and not run again", async () => {
      const log = await runLog();
      const marks = workers.map((worker) => worker.lines.length);
      let ready = false;
      const pending = producer().runCommand({
        ...target(),
        cmd: `echo run >> ${log}; echo ready; sleep 30`,
        onStdout: (text) => {
          if (text.includes("ready")) ready = true;
        },
      });
      pending.catch(() => undefined);
      expect(await eventually(() => ready, 20_000)).toBe(true);
      const running = workers.find((worker, index) => !worker.exited && started(worker, marks[index]).length > 0);
      expect(running).toBeDefined();
      await kill(running as WorkerProcess);
      const error = await pending.catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(OutcomeUnknownError);
      expect(TunnelError.is(error) && error.code).toBe("OUTCOME_UNKNOWN");
      expect(await runsIn(log)).toBe(1);
      // The worker that picked the job up after the stall refused to run it.
      expect(
        workers.some((worker, index) => worker.lines.slice(marks[index]).some((line) => line.phase === "refused" && line.reason === "outcome unknown")),
      ).toBe(true);
    });

    it("a worker killed in the middle of an idempotent command: the job runs again on another worker", async () => {
      const log = await runLog();
      const marks = workers.map((worker) => worker.lines.length);
      let readies = 0;
      const pending = producer().runCommand({
        ...target(),
        cmd: `echo run >> ${log}; echo ready; sleep 2; echo finished`,
        idempotent: true,
        onStdout: (text) => {
          if (text.includes("ready")) readies += 1;
        },
      });
      pending.catch(() => undefined);
      expect(await eventually(() => readies >= 1, 20_000)).toBe(true);
      const running = workers.find((worker, index) => !worker.exited && started(worker, marks[index]).length > 0);
      expect(running).toBeDefined();
      await kill(running as WorkerProcess);
      const result = await pending;
      expect(result).toMatchObject({ exitCode: 0 });
      expect(result.stdout).toContain("finished");
      expect(await runsIn(log)).toBe(2);
      const rerun = workers.find((worker, index) => worker !== running && started(worker, marks[index]).length > 0);
      expect(rerun).toBeDefined();
    });

    it("carries the producer's trace context into the worker's spans", async () => {
      const traceId = randomBytes(16).toString("hex");
      const spanId = randomBytes(8).toString("hex");
      await producer({ traceContext: () => ({ traceparent: `00-${traceId}-${spanId}-01` }) }).runCommand({ ...target(), cmd: "true" });
      const spans = () => workers.flatMap((worker) => worker.lines).filter((line) => line.traceId === traceId);
      expect(await eventually(() => spans().some((line) => line.span === "tunnel.command"), 10_000)).toBe(true);
      expect(spans().find((line) => line.span === "tunnel.command")?.parentSpanId).toBe(spanId);
    });
  });
