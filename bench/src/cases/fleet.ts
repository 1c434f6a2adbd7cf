/**
 * Fleets: one `true` on 1000 host aliases (`bench-f0001` ...; HostName 127.0.0.1, so each is a pool key and a
 * connection of its own) through `Fleet` in this process, and through `@tunnel-sh/queue` with 1, 2 and 4 worker
 * processes (each an Executor with its own pool) on a throwaway redis-server. Then the queue's own cost per operation:
 * jobs that do nothing on the worker, one at a time (ms per operation, round trip) and the bytes each finished job
 * keeps in Redis.
 */
import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { DefaultExecutorConfig, Executor, Fleet } from "@tunnel-sh/core";
import type { FleetRunner, FleetHost, Result, TransferResult } from "@tunnel-sh/core";
import { ConnectionPool, DefaultPoolConfig } from "@tunnel-sh/pool";
import { QueueProducer, QueueWorker } from "@tunnel-sh/queue";
import { startRedisServer } from "@tunnel-sh/testing";
import { Ssh2Transport } from "@tunnel-sh/transport-ssh2";
import { Redis } from "ioredis";
import type { Context } from "../context.js";
import type { ServerInfo } from "../environment.js";

const SECTION = "fleet: one `true` per host alias, in process and through the queue";
const COST_SECTION = "queue cost per operation (jobs that do nothing on one worker)";
/** Hosts running at once in each worker, and in the in-process fleet. */
const CONCURRENCY = 32;

/** What a bench queue worker process needs. */
export interface QueueWorkerTask {
  readonly server: Pick<ServerInfo, "clientKeyPath" | "sshConfigPath">;
  readonly knownHostsPath: string;
  readonly redis: string;
  readonly queue: string;
  /** `ssh`: run jobs over ssh2; `noop`: answer every job at once without touching the network. */
  readonly mode: "ssh" | "noop";
}

function executorFor(server: Pick<ServerInfo, "clientKeyPath" | "sshConfigPath">, knownHostsPath: string): { executor: Executor; close: () => Promise<void> } {
  const transport = new Ssh2Transport({ identityFile: server.clientKeyPath, knownHostsFile: knownHostsPath, configFile: server.sshConfigPath, agent: false });
  const pool = new ConnectionPool(transport, DefaultPoolConfig());
  return { executor: new Executor(pool, DefaultExecutorConfig().with({ maxConcurrent: CONCURRENCY })), close: () => pool.close() };
}

const NOOP_RESULT: Result = { exitCode: 0, signal: null, stdout: "", stderr: "", durationMs: 0, attempts: 1, host: "", truncated: false };

/** A runner that answers at once: what is left is the queue's own cost. */
const noopRunner: FleetRunner = {
  runCommand: async () => NOOP_RESULT,
  runScript: async () => NOOP_RESULT,
  transferFile: async (): Promise<TransferResult> => ({ bytes: 0, files: 0, durationMs: 0, attempts: 1, host: "", verified: false, skipped: 0 }),
};

/** The body of a worker process (`main.js --queue-worker <task>`): runs until SIGTERM. */
export async function runQueueWorker(task: QueueWorkerTask): Promise<void> {
  const stack = task.mode === "ssh" ? executorFor(task.server, task.knownHostsPath) : { executor: noopRunner, close: async () => undefined };
  const worker = new QueueWorker({ redis: task.redis, queue: task.queue, runner: stack.executor, concurrency: CONCURRENCY });
  await worker.waitUntilReady();
  process.stdout.write("ready\n");
  await new Promise<void>((resolve) => process.once("SIGTERM", () => resolve()));
  await worker.close();
  await stack.close();
}

function startWorker(task: QueueWorkerTask): Promise<ChildProcess> {
  // Only the paths a worker needs, and on stdin: the environment object also holds the test users' passwords,
  // which must never reach another process's argv or environment.
  const worker: QueueWorkerTask = { ...task, server: { clientKeyPath: task.server.clientKeyPath, sshConfigPath: task.server.sshConfigPath } };
  const child = spawn(process.execPath, [process.argv[1] as string, "--queue-worker"], { stdio: ["pipe", "pipe", "inherit"] });
  child.stdin?.end(JSON.stringify(worker));
  return new Promise((resolve, reject) => {
    let stdout = "";
    child.stdout?.on("data", (chunk: Buffer) => {
      stdout += chunk.toString();
      if (stdout.includes("ready\n")) resolve(child);
    });
    child.on("exit", (code) => reject(new Error(`queue worker exited ${code} before it was ready`)));
  });
}

async function stopWorkers(children: readonly ChildProcess[]): Promise<void> {
  await Promise.all(
    children.map(
      (child) =>
        new Promise<void>((resolve) => {
          if (child.exitCode !== null) return resolve();
          child.once("exit", () => resolve());
          child.kill("SIGTERM");
        }),
    ),
  );
}

export async function fleet(context: Context): Promise<void> {
  const { environment: server, options } = context;
  const count = options.quick ? 100 : 1000;
  const rounds = options.quick ? 1 : 2;
  const names = Array.from({ length: count }, (_, index) => `bench-f${String(index + 1).padStart(4, "0")}`);
  const knownHostsPath = join(server.localDir, "known_hosts_fleet");
  await writeFile(
    knownHostsPath,
    [`[${server.host}]:${server.port} ${server.hostPublicKey}`, ...names.map((name) => `[${name}]:${server.port} ${server.hostPublicKey}`)].join("\n") + "\n",
  );
  const hosts: FleetHost[] = names.map((name) => ({ host: name }));
  const operation = { type: "command", cmd: "true" } as const;
  const redis = await startRedisServer();
  const samples = new Map<string, number[]>();
  const failures = new Map<string, number>();
  const record = (tool: string, rate: number, failed: number) => {
    samples.set(tool, [...(samples.get(tool) ?? []), rate]);
    failures.set(tool, (failures.get(tool) ?? 0) + failed);
  };
  try {
    for (let round = 0; round < rounds; round++) {
      context.log(`  round ${round + 1}/${rounds}`);
      const local = executorFor(server, knownHostsPath);
      try {
        const report = await new Fleet(local.executor).run({ hosts, operation, concurrency: CONCURRENCY });
        record("Fleet in process (ssh2)", report.ok / (report.durationMs / 1000), report.hosts.length - report.ok);
      } finally {
        await local.close();
      }
      for (const workers of [1, 2, 4]) {
        const queue = `bench-fleet-${round}-${workers}`;
        const children = await Promise.all(
          Array.from({ length: workers }, () => startWorker({ server, knownHostsPath, redis: redis.url, queue, mode: "ssh" })),
        );
        const producer = new QueueProducer({ redis: redis.url, queue });
        try {
          const report = await new Fleet(producer).run({ hosts, operation, concurrency: CONCURRENCY * workers });
          record(
            `Fleet through the queue, ${workers} worker${workers === 1 ? "" : "s"}`,
            report.ok / (report.durationMs / 1000),
            report.hosts.length - report.ok,
          );
        } finally {
          await producer.close();
          await stopWorkers(children);
        }
      }
    }
    for (const [tool, values] of samples) {
      context.record({
        section: SECTION,
        case: `${count} hosts`,
        tool,
        unit: "hosts/s",
        samples: values,
        failures: failures.get(tool) ?? 0,
        against: tool === "Fleet in process (ssh2)" ? [] : ["Fleet in process (ssh2)"],
        note: tool.includes("queue") ? `each worker ${CONCURRENCY} at once, on the same 2-core machine as sshd and redis` : `${CONCURRENCY} at once`,
      });
    }
    await queueCost(context, redis.url, server, knownHostsPath);
  } finally {
    await redis.stop();
  }
}

async function queueCost(context: Context, url: string, server: ServerInfo, knownHostsPath: string): Promise<void> {
  const operations = context.options.quick ? 200 : 1000;
  const queue = "bench-cost";
  const [worker] = await Promise.all([startWorker({ server, knownHostsPath, redis: url, queue, mode: "noop" })]);
  const producer = new QueueProducer({ redis: url, queue });
  const inspect = new Redis(url);
  try {
    const request = { host: "bench-f0001", cmd: "true" };
    // Warm up: connections, scripts loaded into Redis, code compiled.
    for (let index = 0; index < 20; index++) await producer.runCommand(request);
    const memoryBefore = await usedMemory(inspect);
    const latencies: number[] = [];
    for (let index = 0; index < operations; index++) {
      const startedAt = performance.now();
      await producer.runCommand(request);
      latencies.push(performance.now() - startedAt);
    }
    const bytesPerJob = ((await usedMemory(inspect)) - memoryBefore) / operations;
    const startedAt = performance.now();
    await Promise.all(Array.from({ length: operations }, () => producer.runCommand(request)));
    const rate = operations / ((performance.now() - startedAt) / 1000);
    context.record({ section: COST_SECTION, case: "one at a time", tool: "round trip per operation", unit: "ms", samples: latencies });
    context.record({ section: COST_SECTION, case: `${operations} at once`, tool: "operations per second", unit: "cmd/s", samples: [rate] });
    context.record({
      section: COST_SECTION,
      case: "kept in Redis",
      tool: "bytes per finished job",
      unit: "B",
      samples: [bytesPerJob],
      note: "used_memory growth over the jobs, with results kept (keepJobsFor, one hour by default); the events stream included",
    });
  } finally {
    inspect.disconnect();
    await producer.close();
    await stopWorkers(worker ? [worker] : []);
  }
}

async function usedMemory(redis: Redis): Promise<number> {
  const info = await redis.info("memory");
  return Number(/used_memory:(\d+)/.exec(info)?.[1] ?? 0);
}
