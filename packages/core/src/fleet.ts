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
import { AbortError, OutcomeUnknownError, TunnelError, ValidationError } from "./errors.js";
import { Limiter } from "./limiter.js";
import { rejectUnknownOptions } from "./options.js";
import { targetKey } from "./target.js";
import type {
  FleetAmount,
  FleetEvent,
  FleetHostResult,
  FleetOperation,
  FleetOptions,
  FleetReport,
  FleetRun,
  FleetRunner,
} from "./fleet-types.js";
import type { Command, Progress, Result, Script, Target, Transfer, TransferResult } from "./types.js";
import { validateCommand, validateScript, validateTarget, validateTransfer } from "./validate.js";

const DEFAULT_CONCURRENCY = 10;
const FLEET_OPTIONS = [
  "hosts",
  "operation",
  "concurrency",
  "serial",
  "maxFailures",
  "failFast",
  "onBudgetSpent",
  "isFailure",
  "signal",
  "onEvent",
] as const satisfies readonly (keyof FleetOptions)[];

/** A host with everything the run needs, resolved before any I/O. */
interface PlannedHost {
  readonly name: string;
  readonly target: Target;
  readonly index: number;
  readonly operation: FleetOperation;
  batch: number;
}

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

/** The plan of a fleet run: its hosts (validated), its batches and its failure budget. */
export interface FleetPlan {
  readonly hosts: readonly PlannedHost[];
  /** Batch sizes; they add up to the number of hosts. */
  readonly batches: readonly number[];
  /** Failures tolerated; one more spends the budget. `Infinity` for no budget. */
  readonly budget: number;
  readonly concurrency: number;
}

/** Validate fleet options and plan the run. Throws `ValidationError` naming the field. No I/O. */
export function planFleet(options: FleetOptions, validate?: FleetRunner["validate"]): FleetPlan {
  if (typeof options !== "object" || options === null) throw new ValidationError("fleet", "an options object is required");
  // A misspelt budget or batch option would silently run every host at once: refuse what is not an option.
  rejectUnknownOptions(options, FLEET_OPTIONS, "Fleet.run");
  if (!Array.isArray(options.hosts)) throw new ValidationError("hosts", "must be an array of targets");
  const concurrency = options.concurrency ?? DEFAULT_CONCURRENCY;
  if (typeof concurrency !== "number" || !Number.isInteger(concurrency) || concurrency < 1) {
    throw new ValidationError("concurrency", `must be an integer ≥ 1, got ${show(concurrency)}`);
  }
  if (options.failFast !== undefined && typeof options.failFast !== "boolean") throw new ValidationError("failFast", `must be a boolean, got ${show(options.failFast)}`);
  const onBudgetSpent: unknown = options.onBudgetSpent;
  if (onBudgetSpent !== undefined && onBudgetSpent !== "finish" && onBudgetSpent !== "cancel") {
    throw new ValidationError("onBudgetSpent", `must be "finish" or "cancel", got ${show(onBudgetSpent)}`);
  }
  for (const field of ["isFailure", "onEvent"] as const) {
    if (options[field] !== undefined && typeof options[field] !== "function") throw new ValidationError(field, `must be a function, got ${show(options[field])}`);
  }
  if (options.signal !== undefined && !(typeof options.signal === "object" && options.signal !== null && "aborted" in options.signal)) {
    throw new ValidationError("signal", "must be an AbortSignal");
  }
  const operation: unknown = options.operation;
  if (typeof operation !== "function" && (typeof operation !== "object" || operation === null)) {
    throw new ValidationError("operation", "must be an operation object or a function of the host");
  }

  const total = options.hosts.length;
  const names = new Map<string, number>();
  // `Array.isArray` above narrowed the list to `any[]`; its elements are checked one by one below.
  const hosts = (options.hosts as FleetOptions["hosts"]).map((host, index): PlannedHost => {
    if (typeof host !== "object" || host === null) throw new ValidationError(`hosts[${index}]`, "must be a target object");
    const target: Target = { host: host.host, ...(host.port !== undefined ? { port: host.port } : {}), ...(host.user !== undefined ? { user: host.user } : {}) };
    try {
      validateTarget(target);
    } catch (error) {
      throw rename(error, `hosts[${index}]`);
    }
    const name = host.name ?? targetKey(target);
    if (typeof name !== "string" || name.length === 0) throw new ValidationError(`hosts[${index}].name`, "must be a non-empty string");
    const earlier = names.get(name);
    if (earlier !== undefined) throw new ValidationError(`hosts[${index}].name`, `"${name}" is already the name of hosts[${earlier}]`);
    names.set(name, index);
    const hostOperation = typeof options.operation === "function" ? options.operation(host, index) : options.operation;
    validateOperation(hostOperation, target, index, validate);
    return { name, target, index, operation: hostOperation, batch: 0 };
  });

  const batches = planBatches(total, options.serial);
  let position = 0;
  batches.forEach((size, batch) => {
    for (let end = position + size; position < end; position++) {
      const host = hosts[position];
      if (host) host.batch = batch;
    }
  });
  const budget = options.failFast === true ? 0 : options.maxFailures === undefined ? Infinity : resolveAmount(options.maxFailures, total, "maxFailures", "down");
  return { hosts, batches, budget, concurrency };
}

/** Batch sizes from `serial`: each entry resolved against the host count, the last one repeated until all are placed. */
export function planBatches(total: number, serial: FleetOptions["serial"]): number[] {
  if (serial === undefined) return total > 0 ? [total] : [];
  const entries: readonly FleetAmount[] = Array.isArray(serial) ? serial : [serial as FleetAmount];
  if (entries.length === 0) throw new ValidationError("serial", "must not be an empty list");
  const sizes = entries.map((entry, index) => {
    const size = resolveAmount(entry, total, `serial[${index}]`, "up");
    if (size < 1 && !(typeof entry === "string")) throw new ValidationError(`serial[${index}]`, `must be ≥ 1, got ${show(entry)}`);
    return Math.max(1, size);
  });
  const batches: number[] = [];
  for (let placed = 0; placed < total; ) {
    const size = Math.min(sizes[Math.min(batches.length, sizes.length - 1)] ?? total, total - placed);
    batches.push(size);
    placed += size;
  }
  return batches;
}

/** A count or a percentage of `total`. Percentages round `up` (batch sizes) or `down` (failure budgets). */
function resolveAmount(amount: unknown, total: number, field: string, rounding: "up" | "down"): number {
  if (typeof amount === "number") {
    if (!Number.isInteger(amount) || amount < 0) throw new ValidationError(field, `must be an integer ≥ 0 or a percentage like "10%", got ${show(amount)}`);
    return amount;
  }
  if (typeof amount === "string") {
    const match = /^(\d+(?:\.\d+)?)%$/.exec(amount);
    const share = match ? Number(match[1]) : NaN;
    if (!match || share > 100 || (rounding === "up" && share === 0)) {
      throw new ValidationError(field, `must be a count or a percentage from ${rounding === "up" ? "above 0" : "0"} to 100%, got ${show(amount)}`);
    }
    const exact = (total * share) / 100;
    return rounding === "up" ? Math.ceil(exact) : Math.floor(exact);
  }
  throw new ValidationError(field, `must be a count or a percentage like "10%", got ${show(amount)}`);
}

function validateOperation(operation: unknown, target: Target, index: number, validate: FleetRunner["validate"]): void {
  if (typeof operation !== "object" || operation === null) throw new ValidationError(`operation`, `for hosts[${index}]: must be an operation object`, { target });
  const type: unknown = (operation as { type?: unknown }).type;
  const request = requestFor(operation as FleetOperation, target, {});
  try {
    if (type === "command") validateCommand(request as Command);
    else if (type === "script") validateScript(request as Script);
    else if (type === "transfer") validateTransfer(request as Transfer);
    else throw new ValidationError("operation.type", `must be "command", "script" or "transfer", got ${show(type)}`, { target });
    validate?.(type, request);
  } catch (error) {
    throw rename(error, "operation");
  }
}

/** The runner's request for one host: the operation without its `type`, the target, the signal and the callbacks. */
function requestFor(operation: FleetOperation, target: Target, extra: object): Command | Script | Transfer {
  const { type: _type, ...rest } = operation as FleetOperation & Record<string, unknown>;
  return { ...rest, ...target, ...extra } as unknown as Command | Script | Transfer;
}

/** The same validation error with its field placed under `prefix` (`hosts[3].port`, `operation.cmd`). */
function rename(error: unknown, prefix: string): unknown {
  if (!(error instanceof ValidationError)) return error;
  const message = error.message.startsWith(`${error.field}: `) ? error.message.slice(error.field.length + 2) : error.message;
  return new ValidationError(error.field.startsWith(prefix) ? error.field : `${prefix}.${error.field}`, message, { target: error.target, cause: error.cause });
}

function show(value: unknown): string {
  return typeof value === "string" ? JSON.stringify(value) : typeof value === "function" ? "a function" : String(value);
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

