/**
 * `QueueProducer`: runs operations through BullMQ instead of a local pool. It is a `FleetRunner`, so
 * `new Fleet(producer)` fans a fleet out over every worker listening on the queue.
 *
 * Each `runCommand` / `runScript` / `transferFile` call is one job: validated here before any I/O, added to the
 * queue without secrets, run by a worker, its output and progress streamed back through BullMQ's job progress
 * (QueueEvents), its result or typed error returned. Aborting the request's signal cancels the job on the worker that
 * runs it, which stops the remote process.
 *
 * @example
 * const producer = new QueueProducer({ redis: "redis://127.0.0.1:6379", runId: "deploy-42", sudoSecret: "deploy-sudo" });
 * const report = await new Fleet(producer).run({ hosts, operation: { type: "command", cmd: "systemctl reload nginx", sudo: true } });
 * await producer.close();
 */
import { createHash } from "node:crypto";
import { setMaxListeners } from "node:events";
import { AbortError, ConfigError, ConnectError, OutcomeUnknownError, TunnelError, ValidationError, rejectUnknownOptions } from "@tunnel-sh/core";
import { copyTarget, raceAbort, targetKey, validateCommand, validateScript, validateTransfer } from "@tunnel-sh/core/internal";
import type { Command, FleetRunner, Result, Script, Transfer, TransferResult } from "@tunnel-sh/core";
import { Queue, QueueEvents } from "bullmq";
import type { Job } from "bullmq";
import type { Redis } from "ioredis";
import { JOB_DATA_VERSION, OUTCOME_UNKNOWN_PREFIX, isJobProgress } from "./job-data.js";
import type { OperationKind, QueueJobData, QueueJobEvent, QueueJobOutcome, TraceCarrier } from "./job-data.js";
import { atMost, cancelChannel, cancelMarker, connectRedis, quietQuit, resolveQueueLocation } from "./redis.js";
import type { RedisLocation } from "./redis.js";
import { deserializeError } from "./serialize-error.js";

export interface QueueProducerOptions {
  /** Where Redis is. The producer opens its own connections and closes them in `close()`. */
  readonly redis: RedisLocation;
  /** The BullMQ queue name, shared with the workers. Default `"tunnel"`. */
  readonly queue?: string;
  /** BullMQ's key prefix. Default `"bull"`. */
  readonly prefix?: string;
  /**
   * Names this run's jobs: a job's id is derived from the run id, the target and the request, so submitting the same
   * operation for the same target with the same run id again (from any producer) attaches to the first job and runs
   * nothing twice, for as long as the job is kept (`keepJobsFor`). Default: every call is a new job.
   */
  readonly runId?: string;
  /**
   * The name of the secret workers use as the sudo password, for requests with `sudo`. The password itself is never
   * given to the producer: a request carrying `sudo.password` is refused with a `ValidationError`.
   */
  readonly sudoSecret?: string;
  /**
   * Returns the caller's trace context (e.g. W3C `traceparent`/`tracestate` from OpenTelemetry's
   * `propagation.inject`), put into each job so the worker's spans join the producer's trace.
   */
  readonly traceContext?: () => TraceCarrier | undefined;
  /** Seconds finished jobs (and their results) are kept in Redis. Default 3 600. */
  readonly keepJobsFor?: number;
  /** Milliseconds to wait for Redis before a request fails with `ConnectError`. Default 10 000. */
  readonly connectTimeout?: number;
}

/** Live callbacks of one request, fed from the job's progress events. */
interface Listeners {
  readonly onStdout?: ((text: string) => void) | undefined;
  readonly onStderr?: ((text: string) => void) | undefined;
  readonly onProgress?: Transfer["onProgress"];
  seq: number;
}

const PRODUCER_OPTIONS = [
  "redis",
  "queue",
  "prefix",
  "runId",
  "sudoSecret",
  "traceContext",
  "keepJobsFor",
  "connectTimeout",
] as const satisfies readonly (keyof QueueProducerOptions)[];
const MAX_TRACE_ENTRIES = 8;
const MAX_TRACE_VALUE = 512;

export class QueueProducer implements FleetRunner {
  readonly #options: QueueProducerOptions;
  readonly #prefix: string;
  readonly #queueName: string;
  readonly #connection: Redis;
  readonly #eventsConnection: Redis;
  readonly #queue: Queue;
  readonly #events: QueueEvents;
  readonly #listeners = new Map<string, Set<Listeners>>();
  readonly #ready: Promise<void>;
  #closed = false;

  constructor(options: QueueProducerOptions) {
    if (typeof options !== "object" || options === null) throw new ConfigError("options", "an options object is required");
    rejectUnknownOptions(options, PRODUCER_OPTIONS, "QueueProducer");
    const { queueName, prefix } = resolveQueueLocation(options);
    if (options.runId !== undefined && (typeof options.runId !== "string" || options.runId.length === 0 || options.runId.includes(":"))) {
      throw new ConfigError("runId", `must be a non-empty string without ":", got ${JSON.stringify(options.runId)}`);
    }
    if (options.sudoSecret !== undefined && (typeof options.sudoSecret !== "string" || options.sudoSecret.length === 0)) {
      throw new ConfigError("sudoSecret", "must be a non-empty secret name");
    }
    if (options.traceContext !== undefined && typeof options.traceContext !== "function") throw new ConfigError("traceContext", "must be a function");
    const keep = options.keepJobsFor ?? 3_600;
    if (!Number.isFinite(keep) || keep <= 0) throw new ConfigError("keepJobsFor", `must be a number of seconds > 0, got ${String(keep)}`);
    const connectTimeout = options.connectTimeout ?? 10_000;
    if (!Number.isInteger(connectTimeout) || connectTimeout < 1)
      throw new ConfigError("connectTimeout", `must be a positive integer of ms, got ${String(connectTimeout)}`);
    this.#options = { ...options, keepJobsFor: keep, connectTimeout };
    this.#prefix = prefix;
    this.#queueName = queueName;
    this.#connection = connectRedis(options.redis);
    this.#eventsConnection = connectRedis(options.redis);
    this.#queue = new Queue(queueName, { connection: this.#connection, prefix });
    this.#events = new QueueEvents(queueName, { connection: this.#eventsConnection, prefix });
    // Every job in flight waits on these emitters; a fleet has many.
    this.#events.setMaxListeners(0);
    this.#queue.setMaxListeners(0);
    this.#events.on("progress", ({ jobId, data }) => this.#onProgress(jobId, data));
    this.#ready = Promise.all([this.#queue.waitUntilReady(), this.#events.waitUntilReady()]).then(() => undefined);
    // A connection error surfaces on the next request; it must not crash the process meanwhile.
    this.#ready.catch(() => undefined);
    this.#queue.on("error", () => undefined);
    this.#events.on("error", () => undefined);
  }

  /** What the queue refuses beyond core's validation (a password, stdin that is not a string). No I/O. */
  validate(_type: OperationKind, request: Command | Script | Transfer): void {
    checkForQueue(request);
  }

  runCommand(command: Command): Promise<Result> {
    validateCommand(command);
    const data = this.#jobData("command", command, command.idempotent === true);
    return this.#submit(data, command, { onStdout: command.onStdout, onStderr: command.onStderr, seq: -1 }) as Promise<Result>;
  }

  runScript(script: Script): Promise<Result> {
    validateScript(script);
    const data = this.#jobData("script", script, script.idempotent === true);
    return this.#submit(data, script, { onStdout: script.onStdout, onStderr: script.onStderr, seq: -1 }) as Promise<Result>;
  }

  transferFile(transfer: Transfer): Promise<TransferResult> {
    validateTransfer(transfer);
    // Transfers are atomic and safe to repeat, as the Executor treats them.
    const data = this.#jobData("transfer", transfer, true);
    return this.#submit(data, transfer, { onProgress: transfer.onProgress, seq: -1 }) as Promise<TransferResult>;
  }

  /** Close the producer's connections. Jobs already submitted keep running on the workers. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    // BullMQ's close waits for Redis; an unreachable one must not keep the producer from closing.
    await atMost(Promise.allSettled([this.#events.close(), this.#queue.close()]), this.#options.connectTimeout ?? 10_000);
    await Promise.all([quietQuit(this.#connection), quietQuit(this.#eventsConnection)]);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  /** The JSON a job carries: the request without callbacks, signal and secrets. Throws before any I/O. */
  #jobData(kind: OperationKind, request: Command | Script | Transfer, idempotent: boolean): QueueJobData {
    checkForQueue(request);
    const sudo = request.sudo;
    const { signal: _signal, onStdout: _stdout, onStderr: _stderr, onProgress: _progress, ...rest } = request as Command & Transfer;
    const trace = this.#options.traceContext?.();
    const data: QueueJobData = {
      version: JOB_DATA_VERSION,
      kind,
      request: JSON.parse(JSON.stringify(rest)) as Record<string, unknown>,
      idempotent,
      ...(sudo !== undefined && sudo !== false && this.#options.sudoSecret !== undefined ? { sudoSecret: this.#options.sudoSecret } : {}),
      ...(trace !== undefined ? { trace: checkedTrace(trace) } : {}),
    };
    return data;
  }

  #jobId(data: QueueJobData, request: Command | Script | Transfer): string | undefined {
    if (this.#options.runId === undefined) return undefined;
    const digest = createHash("sha256")
      .update(JSON.stringify([data.kind, targetKey(request), data.request]))
      .digest("hex")
      .slice(0, 32);
    return `${this.#options.runId}.${digest}`;
  }

  async #submit(data: QueueJobData, request: Command | Script | Transfer, listeners: Listeners): Promise<Result | TransferResult> {
    const signal = request.signal;
    if (signal?.aborted) throw new AbortError(undefined, { target: copyTarget(request) });
    if (this.#closed) throw new ConfigError("producer", "is closed");
    await this.#whenReady(request);
    const jobId = this.#jobId(data, request);
    const keep = this.#options.keepJobsFor ?? 3_600;
    const job = await this.#queue.add(data.kind, data, {
      ...(jobId !== undefined ? { jobId } : {}),
      attempts: 1,
      removeOnComplete: { age: keep },
      removeOnFail: { age: keep },
    });
    const id = job.id;
    if (id === undefined) throw new OutcomeUnknownError("BullMQ gave the job no id", { target: copyTarget(request) });
    let set = this.#listeners.get(id);
    if (!set) this.#listeners.set(id, (set = new Set()));
    set.add(listeners);
    const onAbort = () => {
      void this.#cancel(job).then((removed) => {
        if (removed) abortWait(new AbortError(undefined, { target: copyTarget(request) }));
      });
    };
    let abortWait: (error: unknown) => void = () => undefined;
    const aborted = new Promise<never>((_resolve, reject) => {
      abortWait = reject;
    });
    aborted.catch(() => undefined);
    if (signal) setMaxListeners(0, signal);
    signal?.addEventListener("abort", onAbort, { once: true });
    if (signal?.aborted) onAbort();
    try {
      const outcome = (await Promise.race([job.waitUntilFinished(this.#events), aborted])) as QueueJobOutcome | string;
      const parsed: QueueJobOutcome = typeof outcome === "string" ? (JSON.parse(outcome) as QueueJobOutcome) : outcome;
      if (!parsed.ok) throw deserializeError(parsed.error);
      if ("transfer" in parsed) return parsed.transfer;
      return parsed.result;
    } catch (error) {
      // An operation error came back as data and is already typed; anything else is BullMQ failing the job.
      if (TunnelError.is(error)) throw error;
      throw failedJobError(error instanceof Error ? error.message : String(error), request);
    } finally {
      signal?.removeEventListener("abort", onAbort);
      set.delete(listeners);
      if (set.size === 0) this.#listeners.delete(id);
    }
  }

  /** Redis answered, or a `ConnectError` after `connectTimeout` (ioredis itself would retry for ever). */
  async #whenReady(request: Command | Script | Transfer): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = this.#options.connectTimeout ?? 10_000;
    try {
      const ready = Promise.race([
        this.#ready,
        new Promise<never>((_resolve, reject) => {
          timer = setTimeout(
            () => reject(new ConnectError(`the queue's Redis did not answer within ${timeout} ms`, { target: copyTarget(request), retryable: false })),
            timeout,
          );
        }),
      ]);
      await raceAbort(ready, request.signal, () => new AbortError(undefined, { target: copyTarget(request) }));
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Tells the workers to cancel the job (pub/sub for the one running it, a marker for one that picks it up later),
   * and removes it when it is still waiting. Resolves `true` when it was removed before any worker took it.
   */
  async #cancel(job: Job): Promise<boolean> {
    const id = job.id ?? "";
    try {
      await this.#connection.set(cancelMarker(this.#prefix, this.#queueName, id), "1", "EX", this.#options.keepJobsFor ?? 3_600);
      await this.#connection.publish(cancelChannel(this.#prefix, this.#queueName), id);
    } catch {
      // Redis is gone: the job's own fate is unknowable from here, and the wait reports it.
    }
    try {
      if ((await job.getState()) === "waiting" || (await job.getState()) === "delayed") {
        await job.remove();
        // No worker will see this job; a later one under the same id (the same run submitted again) must not be cancelled.
        await this.#connection.del(cancelMarker(this.#prefix, this.#queueName, id));
        return true;
      }
    } catch {
      // A worker took it meanwhile (it is locked): the worker's cancellation ends it.
    }
    return false;
  }

  #onProgress(jobId: string, data: unknown): void {
    const set = this.#listeners.get(jobId);
    if (!set || !isJobProgress(data)) return;
    for (const listeners of set) {
      if (data.seq <= listeners.seq) continue;
      listeners.seq = data.seq;
      for (const event of data.events) deliver(listeners, event);
    }
  }
}

function deliver(listeners: Listeners, event: QueueJobEvent): void {
  if (event.type === "output") (event.stream === "stdout" ? listeners.onStdout : listeners.onStderr)?.(event.text);
  else if (event.type === "progress") listeners.onProgress?.({ bytes: event.bytes, total: event.total ?? undefined, rate: event.rate });
}

/** A job BullMQ failed (not an operation error, which comes back as data): its outcome is unknown. */
function failedJobError(reason: string, request: Command | Script | Transfer): OutcomeUnknownError {
  const message = reason.startsWith(OUTCOME_UNKNOWN_PREFIX)
    ? reason.slice(OUTCOME_UNKNOWN_PREFIX.length)
    : /stalled more than allowable limit/.test(reason)
      ? "the workers running the job stopped while it ran, more often than allowed; it is not run again"
      : `the job failed in the queue: ${reason}`;
  return new OutcomeUnknownError(message, { target: copyTarget(request) });
}

/** What cannot go into a job: a sudo password (a secret) and stdin that is not a string. */
function checkForQueue(request: Command | Script | Transfer): void {
  const sudo = request.sudo;
  if (typeof sudo === "object" && sudo.password !== undefined) {
    throw new ValidationError("sudo.password", "a password never goes into the queue: name a secret with the producer's `sudoSecret`, which workers resolve", {
      target: copyTarget(request),
    });
  }
  const stdin = (request as Command).stdin;
  if (stdin !== undefined && typeof stdin !== "string") {
    throw new ValidationError("stdin", "only a string goes through the queue (a stream or bytes cannot be put into a job)", { target: copyTarget(request) });
  }
}

/** The request's target alone: errors carry no command, env or paths. */
function checkedTrace(trace: TraceCarrier): TraceCarrier {
  const entries = Object.entries(trace);
  if (entries.length > MAX_TRACE_ENTRIES || entries.some(([key, value]) => typeof value !== "string" || key.length > 64 || value.length > MAX_TRACE_VALUE)) {
    throw new ValidationError("traceContext", `must return at most ${MAX_TRACE_ENTRIES} short string entries (traceparent, tracestate)`);
  }
  return Object.fromEntries(entries);
}
