/**
 * `tunnel worker --redis URL`: a queue worker with this machine's stack (transport, pool, executor). It runs the jobs
 * `tunnel run --redis` (and script / put / get) or `QueueProducer` submit, until Ctrl-C or SIGTERM, which cancels
 * the jobs running (their remote processes are stopped; they report ABORTED).
 */
import { Redactor } from "@tunnel-sh/core";
import type { CliIo } from "./cli.js";
import type { CommonOptions } from "./command-options.js";
import { ENV_NAME } from "./inventory.js";
import { ExitCode } from "./output.js";
import { SharedTerminal } from "./progress.js";
import { makeStack, stackOptions } from "./stack.js";
import { UsageError } from "./usage-error.js";

export interface WorkerCliOptions extends Omit<CommonOptions, "json" | "serial" | "maxFail"> {
  readonly redis: string;
  readonly queue?: string;
  /** `name=VAR`: the secret `name` jobs may ask for is in the environment variable `VAR`. */
  readonly secretEnv?: string[];
}

/** Secrets from `--secret-env name=VAR`; the values come from the environment, never from argv. */
export function parseSecretEnv(values: readonly string[], env: CliIo["env"]): Record<string, string> {
  const secrets: Record<string, string> = {};
  for (const value of values) {
    const equals = value.indexOf("=");
    const name = value.slice(0, equals);
    const variable = value.slice(equals + 1);
    if (equals <= 0 || !ENV_NAME.test(variable)) throw new UsageError(`--secret-env ${JSON.stringify(value)}: expected name=VARIABLE`);
    const secret = env[variable];
    if (secret === undefined || secret === "") throw new UsageError(`--secret-env: the environment variable ${variable} is not set`);
    secrets[name] = secret;
  }
  return secrets;
}

export async function runWorker(io: CliIo, options: WorkerCliOptions): Promise<number> {
  const secrets = parseSecretEnv(options.secretEnv ?? [], io.env);
  const redactor = new Redactor();
  for (const secret of Object.values(secrets)) redactor.add(secret);
  const { QueueWorker } = await import("@tunnel-sh/queue");
  const terminal = new SharedTerminal(io.stderr);
  const stack = await makeStack(stackOptions({ ...options, json: false }, terminal, io.env), redactor);
  let worker: InstanceType<typeof QueueWorker> | undefined;
  try {
    worker = new QueueWorker({
      redis: options.redis,
      ...(options.queue !== undefined ? { queue: options.queue } : {}),
      runner: stack.executor,
      concurrency: options.concurrency,
      secrets,
      onJob: (event) => {
        const detail = event.phase === "finished" ? (event.ok ? " ok" : " failed") : event.reason !== undefined ? `: ${redactor.redact(event.reason)}` : "";
        io.stderr.write(`tunnel worker: job ${event.jobId} (${event.kind} on ${event.target}) ${event.phase}${detail}\n`);
      },
    });
    const stopped = new Promise<void>((resolve) => {
      if (io.interrupt?.aborted) resolve();
      io.interrupt?.addEventListener("abort", () => resolve(), { once: true });
    });
    await Promise.race([worker.waitUntilReady(), stopped]);
    if (!io.interrupt?.aborted)
      io.stderr.write(`tunnel worker: taking jobs from queue ${options.queue ?? "tunnel"} (${options.concurrency} at once); Ctrl-C stops\n`);
    await stopped;
    io.stderr.write("tunnel worker: stopping; cancelling the jobs running\n");
    return ExitCode.INTERRUPTED;
  } finally {
    await worker?.close({ force: true });
    await stack.close();
  }
}
