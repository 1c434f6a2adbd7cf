/**
 * `Fleet`: one operation on many hosts through a `FleetRunner` (the `Executor`, or a queue producer), with a
 * concurrency limit, rolling batches, a failure budget, live events and one cancelling signal.
 *
 * @example
 * const run = new Fleet(executor).run({ hosts, operation: { type: "command", cmd: "uptime" }, concurrency: 20 });
 * for await (const event of run) if (event.type === "output") process.stdout.write(`${event.host}: ${event.text}`);
 * const report = await run;
 */
import { setMaxListeners } from "node:events";
import { AbortError, OutcomeUnknownError, TunnelError } from "./errors.js";
import { planFleet, requestFor } from "./fleet-plan.js";
import type { FleetPlan, PlannedHost } from "./fleet-plan.js";
import type { FleetEvent, FleetHostResult, FleetOptions, FleetReport, FleetRun, FleetRunner } from "./fleet-types.js";
import { Limiter } from "./limiter.js";
import type { Command, Progress, Result, Script, Transfer, TransferResult } from "./types.js";

export class Fleet {
  readonly #runner: FleetRunner;

  /** `runner` runs each host's operation: an `Executor`, or anything else implementing `FleetRunner`. */
  constructor(runner: FleetRunner) {
    this.#runner = runner;
  }

  /**
   * Start the operation on every host. Throws `ValidationError` (synchronously, before any I/O) for bad options or an
   * operation that is invalid for any host. The returned run is awaitable (the report) and async-iterable (events).
   */
  run(options: FleetOptions): FleetRun {
    const runner = this.#runner;
    const plan = planFleet(options, runner.validate ? (type, request) => runner.validate?.(type, request) : undefined);
    const channel = new EventChannel();
    const report = Promise.resolve().then(() => execute(this.#runner, options, plan, channel));
    // The report's rejection is the caller's to see through `report`/`then`; the iterator ends either way.
    report.then(
      () => channel.close(),
      (error: unknown) => channel.close(error),
    );
    return {
      report,
      then: (onFulfilled, onRejected) => report.then(onFulfilled, onRejected),
      [Symbol.asyncIterator]: () => channel.subscribe(),
    };
  }
}

function defaultIsFailure(result: FleetHostResult): boolean {
  return result.error !== undefined || (result.result !== undefined && result.result.exitCode !== 0);
}

async function execute(runner: FleetRunner, options: FleetOptions, plan: FleetPlan, channel: EventChannel): Promise<FleetReport> {
  const startedAt = performance.now();
  const results: FleetHostResult[] = new Array<FleetHostResult>(plan.hosts.length);
  const stop = new AbortController();
  // Every host's operation listens on this one signal; a fleet has many.
  setMaxListeners(0, stop.signal);
  let aborted = false;
  let budgetSpent = false;
  let failures = 0;
  const isFailure = options.isFailure ?? defaultIsFailure;
  const emit = (event: FleetEvent) => {
    channel.push(event);
    try {
      options.onEvent?.(event);
    } catch {
      // A listener's bug must not break the fleet (the contract says MUST NOT throw).
    }
  };
  const onAbort = () => {
    aborted = true;
    stop.abort(new AbortError("the fleet was cancelled"));
  };
  options.signal?.addEventListener("abort", onAbort, { once: true });
  if (options.signal?.aborted) onAbort();

  const skip = (host: PlannedHost) => {
    const result: FleetHostResult = {
      name: host.name,
      target: host.target,
      index: host.index,
      batch: host.batch,
      status: "skipped",
      skipReason: aborted ? "aborted" : "budget",
      durationMs: 0,
    };
    results[host.index] = result;
    emit({ type: "skipped", host: host.name, result });
  };

  const runHost = async (host: PlannedHost) => {
    emit({ type: "started", host: host.name, index: host.index, batch: host.batch });
    const hostStartedAt = performance.now();
    const base = { name: host.name, target: host.target, index: host.index, batch: host.batch };
    let result: FleetHostResult;
    try {
      const value = await runOne(runner, host, stop.signal, emit);
      const finished = { ...base, ...value, durationMs: performance.now() - hostStartedAt };
      result = { ...finished, status: isFailure({ ...finished, status: "ok" }) ? "failed" : "ok" };
    } catch (caught) {
      // The Executor rejects with TunnelErrors only; a runner of another kind that throws something else leaves the
      // host's fate unknown.
      const error = TunnelError.is(caught)
        ? caught
        : new OutcomeUnknownError(`the runner failed: ${caught instanceof Error ? caught.message : String(caught)}`, { target: host.target, cause: caught });
      const cancelled = stop.signal.aborted && (error.code === "ABORTED" || error.code === "POOL_CLOSED");
      const finished: FleetHostResult = { ...base, status: "failed", error, durationMs: performance.now() - hostStartedAt };
      result = cancelled ? { ...finished, status: "cancelled" } : { ...finished, status: isFailure(finished) ? "failed" : "ok" };
    }
    results[host.index] = result;
    if (result.status === "failed") {
      failures += 1;
      if (!budgetSpent && failures > plan.budget) {
        budgetSpent = true;
        emit({ type: "budget-spent", failures, budget: plan.budget });
        if (options.onBudgetSpent === "cancel") stop.abort(new AbortError("the fleet's failure budget was spent"));
      }
    }
    emit({ type: "done", host: host.name, result });
  };

  try {
    let position = 0;
    for (const [batch, size] of plan.batches.entries()) {
      const members = plan.hosts.slice(position, position + size);
      position += size;
      if (aborted || budgetSpent) {
        members.forEach(skip);
        continue;
      }
      emit({ type: "batch", batch, hosts: members.map((host) => host.name) });
      const limiter = new Limiter(plan.concurrency);
      await Promise.all(
        members.map(async (host) => {
          await limiter.acquire();
          try {
            if (aborted || budgetSpent) skip(host);
            else await runHost(host);
          } finally {
            limiter.release();
          }
        }),
      );
    }
  } finally {
    options.signal?.removeEventListener("abort", onAbort);
  }
  const count = (status: FleetHostResult["status"]) => results.filter((result) => result.status === status).length;
  return {
    hosts: results,
    ok: count("ok"),
    failed: count("failed"),
    cancelled: count("cancelled"),
    skipped: count("skipped"),
    budgetSpent,
    aborted,
    batches: plan.batches,
    durationMs: performance.now() - startedAt,
  };
}

async function runOne(
  runner: FleetRunner,
  host: PlannedHost,
  signal: AbortSignal,
  emit: (event: FleetEvent) => void,
): Promise<{ readonly result?: Result; readonly transfer?: TransferResult }> {
  const name = host.name;
  const operation = host.operation;
  if (operation.type === "transfer") {
    const request = requestFor(operation, host.target, {
      signal,
      onProgress: (progress: Progress) => emit({ type: "progress", host: name, progress }),
    }) as Transfer;
    return { transfer: await runner.transferFile(request) };
  }
  const extra = {
    signal,
    onStdout: (text: string) => emit({ type: "output", host: name, stream: "stdout", text }),
    onStderr: (text: string) => emit({ type: "output", host: name, stream: "stderr", text }),
  };
  if (operation.type === "script") return { result: await runner.runScript(requestFor(operation, host.target, extra) as Script) };
  return { result: await runner.runCommand(requestFor(operation, host.target, extra) as Command) };
}

/** Fans events out to every iterator subscribed so far; each buffers what its reader has not taken yet. */
class EventChannel {
  readonly #subscribers = new Set<Subscriber>();
  #closed = false;
  #failure: { readonly error: unknown } | undefined;

  push(event: FleetEvent): void {
    for (const subscriber of this.#subscribers) subscriber.push(event);
  }

  close(error?: unknown): void {
    this.#closed = true;
    if (error !== undefined) this.#failure = { error };
    for (const subscriber of this.#subscribers) subscriber.end(this.#failure);
  }

  subscribe(): AsyncIterator<FleetEvent> {
    const subscriber = new Subscriber(() => this.#subscribers.delete(subscriber));
    if (this.#closed) subscriber.end(this.#failure);
    else this.#subscribers.add(subscriber);
    return subscriber;
  }
}

class Subscriber implements AsyncIterator<FleetEvent> {
  readonly #buffer: FleetEvent[] = [];
  readonly #unsubscribe: () => void;
  #waiting: { resolve: (value: IteratorResult<FleetEvent>) => void; reject: (error: unknown) => void } | undefined;
  #ended = false;
  #failure: { readonly error: unknown } | undefined;

  constructor(unsubscribe: () => void) {
    this.#unsubscribe = unsubscribe;
  }

  push(event: FleetEvent): void {
    if (this.#waiting) {
      const waiting = this.#waiting;
      this.#waiting = undefined;
      waiting.resolve({ value: event, done: false });
    } else this.#buffer.push(event);
  }

  end(failure: { readonly error: unknown } | undefined): void {
    this.#ended = true;
    this.#failure = failure;
    this.#unsubscribe();
    if (this.#waiting) {
      const waiting = this.#waiting;
      this.#waiting = undefined;
      if (failure) waiting.reject(failure.error);
      else waiting.resolve({ value: undefined, done: true });
    }
  }

  next(): Promise<IteratorResult<FleetEvent>> {
    const event = this.#buffer.shift();
    if (event !== undefined) return Promise.resolve({ value: event, done: false });
    if (this.#ended) return this.#failure ? Promise.reject(this.#failure.error) : Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve, reject) => {
      this.#waiting = { resolve, reject };
    });
  }

  return(): Promise<IteratorResult<FleetEvent>> {
    // The reader stopped early: drop its buffer and stop collecting for it; the fleet itself runs on.
    this.#buffer.length = 0;
    this.#ended = true;
    this.#failure = undefined;
    this.#unsubscribe();
    return Promise.resolve({ value: undefined, done: true });
  }
}
