/** The plan of a fleet run, made before any I/O: validated options, hosts and operations, batches and the failure budget. */
import { ValidationError } from "./errors.js";
import type { FleetAmount, FleetOperation, FleetOptions, FleetRunner } from "./fleet-types.js";
import { rejectUnknownOptions } from "./options.js";
import { copyTarget, targetKey } from "./target.js";
import type { Command, Script, Target, Transfer } from "./types.js";
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
export interface PlannedHost {
  readonly name: string;
  readonly target: Target;
  readonly index: number;
  readonly operation: FleetOperation;
  batch: number;
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
  if (options.failFast !== undefined && typeof options.failFast !== "boolean")
    throw new ValidationError("failFast", `must be a boolean, got ${show(options.failFast)}`);
  const onBudgetSpent: unknown = options.onBudgetSpent;
  if (onBudgetSpent !== undefined && onBudgetSpent !== "finish" && onBudgetSpent !== "cancel") {
    throw new ValidationError("onBudgetSpent", `must be "finish" or "cancel", got ${show(onBudgetSpent)}`);
  }
  for (const field of ["isFailure", "onEvent"] as const) {
    if (options[field] !== undefined && typeof options[field] !== "function")
      throw new ValidationError(field, `must be a function, got ${show(options[field])}`);
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
    const target = copyTarget(host);
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
  const budget =
    options.failFast === true ? 0 : options.maxFailures === undefined ? Infinity : resolveAmount(options.maxFailures, total, "maxFailures", "down");
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
  for (let placed = 0; placed < total;) {
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
  if (typeof operation !== "object" || operation === null)
    throw new ValidationError(`operation`, `for hosts[${index}]: must be an operation object`, { target });
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
export function requestFor(operation: FleetOperation, target: Target, extra: object): Command | Script | Transfer {
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
