/**
 * `QueueWorker`: takes jobs from the queue and runs them through an injected `FleetRunner` (an `Executor` with this
 * machine's own pool and transports), streaming output and progress back and returning the result or typed error.
 *
 * - Cancellation: producers announce a cancelled job on a pub/sub channel; the worker running it aborts the job's
 *   signal (BullMQ's `cancelJob`), which stops the remote process.
 * - Secrets: a job names a secret (`sudoSecret`); the worker resolves it from its own `secrets`.
 * - A worker that dies mid-operation: its job's lock expires and another worker's stalled check puts the job back
 *   (`maxStalledCount: 1`). The worker that picks it up runs it again only when the job is idempotent; otherwise the
 *   job fails as `OUTCOME_UNKNOWN` and is never run twice.
 *
 * @example
 * const worker = new QueueWorker({ redis: "redis://10.0.0.5:6379", runner: executor, concurrency: 50, secrets: { "deploy-sudo": password } });
 * process.on("SIGTERM", () => void worker.close().then(() => pool.close()));
 */
import { AbortError, ConfigError, TunnelError, rejectUnknownOptions } from "@tunnel-sh/core";
import type { Command, FleetRunner, Progress, Script, Transfer } from "@tunnel-sh/core";
import { copyTarget } from "@tunnel-sh/core/internal";
import { UnrecoverableError, Worker } from "bullmq";
import type { Job } from "bullmq";
import type { Redis } from "ioredis";
import { JOB_DATA_VERSION, OUTCOME_UNKNOWN_PREFIX } from "./job-data.js";
import type { QueueJobData, QueueJobEvent, QueueJobOutcome, TraceCarrier } from "./job-data.js";
import { cancelChannel, cancelMarker, connectRedis, quietQuit, resolveQueueLocation } from "./redis.js";
import type { RedisLocation } from "./redis.js";
import { serializeError } from "./serialize-error.js";

/** What a worker tells its host application about each job (for logs). */
export interface QueueWorkerJobEvent {
  readonly jobId: string;
  readonly kind: string;
  /** `user@host:port` of the job's target. */
  readonly target: string;
  readonly phase: "started" | "finished" | "refused";
  /** For `finished`: whether the operation succeeded; for `refused`: why the job was not run. */
  readonly ok?: boolean;
  readonly reason?: string;
}

export interface QueueWorkerOptions {
  /** Where Redis is. The worker opens its own connections and closes them in `close()`. */
  readonly redis: RedisLocation;
  /** Runs each job's operation: an `Executor` with this worker's pool and transports (the caller owns and closes it). */
  readonly runner: FleetRunner;
  /** The BullMQ queue name, shared with the producers. Default `"tunnel"`. */
  readonly queue?: string;
  /** BullMQ's key prefix. Default `"bull"`. */
  readonly prefix?: string;
  /** Jobs this worker runs at once. Default 10. */
  readonly concurrency?: number;
  /** Secrets jobs may name (`sudoSecret`): a map, or a function returning the secret or `undefined`. */
  readonly secrets?: Readonly<Record<string, string>> | ((name: string) => string | undefined | Promise<string | undefined>);
  /**
   * Runs a job inside the producer's trace context, e.g. with OpenTelemetry:
   * `(carrier, run) => context.with(propagation.extract(ROOT_CONTEXT, carrier), run)`. Default: runs it as is.
   */
  readonly withTraceContext?: <T>(carrier: TraceCarrier, run: () => Promise<T>) => Promise<T>;
  /**
   * Milliseconds a job's lock lasts without renewal (renewed at half that while the worker lives). A worker that died
   * is noticed after about this long plus `stalledInterval`. Default 30 000.
   */
  readonly lockDuration?: number;
  /** Milliseconds between checks for jobs whose worker died. Default 30 000. */
  readonly stalledInterval?: number;
  /** Milliseconds output is gathered before it is sent to the producer. Default 50. */
  readonly outputInterval?: number;
  /** The worker's name (BullMQ's `processedBy`). */
  readonly name?: string;
  /** Called for every job the worker starts, finishes or refuses. MUST NOT throw. */
  readonly onJob?: (event: QueueWorkerJobEvent) => void;
}

const WORKER_OPTIONS = [
  "redis",
  "runner",
  "queue",
  "prefix",
  "concurrency",
  "secrets",
  "withTraceContext",
  "lockDuration",
  "stalledInterval",
  "outputInterval",
  "name",
  "onJob",
] as const satisfies readonly (keyof QueueWorkerOptions)[];

/** Output gathered past this many characters is sent at once. */
const OUTPUT_FLUSH_CHARACTERS = 64 * 1024;

export class QueueWorker {
  readonly #options: QueueWorkerOptions;
  readonly #prefix: string;
  readonly #queueName: string;
  readonly #connection: Redis;
  readonly #subscriber: Redis;
  readonly #worker: Worker<QueueJobData, QueueJobOutcome>;
  readonly #ready: Promise<void>;
  #closed: Promise<void> | undefined;

  constructor(options: QueueWorkerOptions) {
    if (typeof options !== "object" || options === null) throw new ConfigError("options", "an options object is required");
    rejectUnknownOptions(options, WORKER_OPTIONS, "QueueWorker");
    const { queueName, prefix } = resolveQueueLocation(options);
    const runner: unknown = options.runner;
    if (typeof runner !== "object" || runner === null || typeof (runner as FleetRunner).runCommand !== "function") {
      throw new ConfigError("runner", "must be an Executor (or another FleetRunner)");
    }
    for (const field of ["concurrency", "lockDuration", "stalledInterval", "outputInterval"] as const) {
      const value = options[field];
      if (value !== undefined && (!Number.isInteger(value) || value < (field === "outputInterval" ? 0 : 1))) {
        throw new ConfigError(field, `must be a positive integer, got ${String(value)}`);
      }
    }
    if (options.secrets !== undefined && typeof options.secrets !== "function" && (typeof options.secrets !== "object" || options.secrets === null)) {
      throw new ConfigError("secrets", "must be a map of names to secrets or a function");
    }
    this.#options = options;
    this.#prefix = prefix;
    this.#queueName = queueName;
    this.#connection = connectRedis(options.redis);
    this.#subscriber = connectRedis(options.redis);
    this.#worker = new Worker<QueueJobData, QueueJobOutcome>(queueName, (job, _token, signal) => this.#process(job, signal), {
      connection: this.#connection,
      prefix,
      concurrency: options.concurrency ?? 10,
      lockDuration: options.lockDuration ?? 30_000,
      stalledInterval: options.stalledInterval ?? 30_000,
      // A job whose worker died goes back to the queue once; the next worker decides whether it may run again.
      maxStalledCount: 1,
      ...(options.name !== undefined ? { name: options.name } : {}),
    });
    this.#worker.on("error", () => undefined);
    const channel = cancelChannel(prefix, queueName);
    this.#subscriber.on("message", (from: string, jobId: string) => {
      if (from === channel) this.#worker.cancelJob(jobId, "cancelled by the producer");
    });
    this.#ready = Promise.all([this.#worker.waitUntilReady(), this.#subscriber.subscribe(channel)]).then(() => undefined);
    this.#ready.catch(() => undefined);
  }

  /** Resolves once the worker listens for jobs and cancellations. */
  async waitUntilReady(): Promise<void> {
    await this.#ready;
  }

  /**
   * Stop taking jobs, let running ones finish (or, with `force`, cancel them: their remote processes are stopped and
   * they report `ABORTED`), and close the worker's Redis connections. The runner is the caller's to close. Idempotent.
   */
  close(options: { readonly force?: boolean } = {}): Promise<void> {
    this.#closed ??= (async () => {
      if (options.force === true) this.#worker.cancelAllJobs("the worker is shutting down");
      await this.#worker.close();
      await Promise.all([quietQuit(this.#subscriber), quietQuit(this.#connection)]);
    })();
    return this.#closed;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  async #process(job: Job<QueueJobData, QueueJobOutcome>, signal: AbortSignal | undefined): Promise<QueueJobOutcome> {
    const data = job.data;
    const jobId = job.id ?? "";
    const request = data.request as unknown as Command & Script & Transfer;
    const jobTarget = copyTarget(request);
    const target = `${String(request.user ?? "")}@${String(request.host)}:${String(request.port ?? "")}`;
    const notify = (event: Omit<QueueWorkerJobEvent, "jobId" | "kind" | "target">) => {
      try {
        this.#options.onJob?.({ jobId, kind: data.kind, target, ...event });
      } catch {
        // The contract says MUST NOT throw; a logging bug must not fail the job.
      }
    };
    if (data.version !== JOB_DATA_VERSION || !["command", "script", "transfer"].includes(data.kind)) {
      notify({ phase: "refused", reason: "unknown job data version or kind" });
      throw new UnrecoverableError(`the job's data (version ${String(data.version)}, kind ${String(data.kind)}) is not one this worker runs`);
    }
    // Picked up again after a worker died in the middle of it: run it again only when that is safe.
    if ((job.stalledCounter > 0 || job.attemptsStarted > 1) && !data.idempotent) {
      notify({ phase: "refused", reason: "outcome unknown" });
      throw new UnrecoverableError(
        `${OUTCOME_UNKNOWN_PREFIX}the worker running the job on ${target} stopped while it ran; it may or may not have run, and is not idempotent, so it is not run again`,
      );
    }
    const abortOutcome = (): QueueJobOutcome => ({ ok: false, error: serializeError(new AbortError(undefined, { target: jobTarget })) });
    if (signal?.aborted || (await this.#connection.exists(cancelMarker(this.#prefix, this.#queueName, jobId))) === 1) return abortOutcome();

    let password: string | undefined;
    if (data.sudoSecret !== undefined) {
      password = await this.#secret(data.sudoSecret);
      if (password === undefined) {
        const error = new ConfigError("sudoSecret", `this worker has no secret named ${JSON.stringify(data.sudoSecret)}`, { target: jobTarget });
        notify({ phase: "refused", reason: error.message });
        return { ok: false, error: serializeError(error) };
      }
    }

    const progress = new ProgressSender(job, this.#options.outputInterval ?? 50);
    const stop = new AbortController();
    const onAbort = () => stop.abort(new AbortError("the job was cancelled", { target: jobTarget }));
    signal?.addEventListener("abort", onAbort, { once: true });
    if (signal?.aborted) onAbort();
    const sudo = request.sudo;
    const withSecret = password === undefined ? {} : { sudo: { ...(typeof sudo === "object" ? sudo : {}), password } };
    const output = {
      onStdout: (text: string) => progress.push({ type: "output", stream: "stdout", text }),
      onStderr: (text: string) => progress.push({ type: "output", stream: "stderr", text }),
    };
    const run = async (): Promise<QueueJobOutcome> => {
      const runner = this.#options.runner;
      if (data.kind === "transfer") {
        const onProgress = (update: Progress) => progress.replace({ type: "progress", bytes: update.bytes, total: update.total ?? null, rate: update.rate });
        return { ok: true, transfer: await runner.transferFile({ ...request, ...withSecret, signal: stop.signal, onProgress }) };
      }
      if (data.kind === "script") return { ok: true, result: await runner.runScript({ ...request, ...withSecret, signal: stop.signal, ...output }) };
      return { ok: true, result: await runner.runCommand({ ...request, ...withSecret, signal: stop.signal, ...output }) };
    };
    notify({ phase: "started" });
    progress.push({ type: "started" });
    let outcome: QueueJobOutcome;
    try {
      outcome = data.trace !== undefined && this.#options.withTraceContext ? await this.#options.withTraceContext(data.trace, run) : await run();
    } catch (error) {
      outcome = { ok: false, error: serializeError(TunnelError.is(error) || !stop.signal.aborted ? error : stop.signal.reason) };
    } finally {
      signal?.removeEventListener("abort", onAbort);
    }
    await progress.close();
    notify({ phase: "finished", ok: outcome.ok && !("result" in outcome && outcome.result.exitCode !== 0) });
    return outcome;
  }

  async #secret(name: string): Promise<string | undefined> {
    const secrets = this.#options.secrets;
    if (secrets === undefined) return undefined;
    if (typeof secrets === "function") return secrets(name);
    return Object.hasOwn(secrets, name) ? secrets[name] : undefined;
  }
}

/**
 * Gathers a job's events and sends them as numbered batches through `job.updateProgress`, at most one in flight:
 * output in order, and only the latest transfer progress.
 */
class ProgressSender {
  readonly #job: Job;
  readonly #interval: number;
  #pending: QueueJobEvent[] = [];
  #characters = 0;
  #seq = 0;
  #timer: NodeJS.Timeout | undefined;
  #sending: Promise<void> = Promise.resolve();

  constructor(job: Job, interval: number) {
    this.#job = job;
    this.#interval = interval;
  }

  push(event: QueueJobEvent): void {
    this.#pending.push(event);
    if (event.type === "output") this.#characters += event.text.length;
    if (this.#characters >= OUTPUT_FLUSH_CHARACTERS) this.#flush();
    else this.#timer ??= setTimeout(() => this.#flush(), this.#interval);
  }

  /** A progress update supersedes the one still waiting to be sent. */
  replace(event: QueueJobEvent): void {
    const last = this.#pending[this.#pending.length - 1];
    if (last?.type === event.type) this.#pending[this.#pending.length - 1] = event;
    else this.push(event);
  }

  async close(): Promise<void> {
    this.#flush();
    await this.#sending;
  }

  #flush(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#pending.length === 0) return;
    const events = this.#pending;
    this.#pending = [];
    this.#characters = 0;
    const seq = ++this.#seq;
    // Live output is best effort: a lost update must not fail the job, whose result carries the output anyway.
    this.#sending = this.#sending.then(() => this.#job.updateProgress({ seq, events }).catch(() => undefined));
  }
}
