/**
 * The executor's configuration: an immutable, validated value with presets and `withX()` builders.
 *
 * Every time is in milliseconds, every size in bytes. An `ExecutorConfig` is frozen and always valid: the
 * constructor validates, and each `withX()` returns a new validated instance, leaving the original untouched.
 *
 * | field | Default | Development | Production | meaning |
 * |---|---|---|---|---|
 * | `defaultTimeout` | 30 000 | 10 000 | 60 000 | `runCommand` timeout when the command has none |
 * | `maxRetries` | 2 | 1 | 3 | retries after the first attempt (attempts = maxRetries + 1); 0 = never retry |
 * | `retryBackoff` | 500 | 200 | 1 000 | delay before the first retry |
 * | `maxRetryDelay` | 10 000 | 2 000 | 30 000 | cap on any retry delay |
 * | `retryMultiplier` | 2 | 2 | 2 | delay growth per retry |
 * | `retryJitter` | 0.2 | 0 | 0.3 | fraction 0..1 of each delay randomised downwards |
 * | `sudoTimeout` | 10 000 | 5 000 | 15 000 | budget for sudo's password prompt to appear and be answered |
 * | `scriptTimeout` | 300 000 | 60 000 | 600 000 | `runScript` timeout when the script has none |
 * | `transferTimeout` | 600 000 | 120 000 | 1 800 000 | `transferFile` timeout when the transfer has none |
 * | `connectionReuse` | true | true | true | release leases for reuse; `false` destroys each connection after its operation |
 * | `maxConcurrent` | 10 | 4 | 50 | operations the executor runs at once; more wait in line |
 * | `maxOutputBytes` | 10 MiB | 1 MiB | 16 MiB | per-stream output cap when the request has none |
 * | `breaker.failureThreshold` | 5 | 3 | 5 | consecutive connection failures that open a host's breaker |
 * | `breaker.cooldown` | 30 000 | 5 000 | 60 000 | how long a breaker stays open before one probe |
 *
 * @example
 * const config = ProductionExecutorConfig().withTimeout(120_000).withRetries(5);
 * config.retryStrategy(); // { maxAttempts: 6, baseDelay: 1000, maxDelay: 30000, multiplier: 2, jitter: 0.3 }
 */
import { ConfigError } from "./errors.js";
import { rejectUnknownOptions } from "./options.js";
import type { RetryStrategy } from "./retry.js";
import { MAX_TIMEOUT_MS } from "./validate.js";

/** The circuit breaker settings inside `ExecutorConfig`. */
export interface BreakerConfig {
  /** Consecutive connection failures that open a host's breaker. Integer ≥ 1. */
  readonly failureThreshold: number;
  /** Milliseconds a breaker stays open before it lets one probe through. > 0. */
  readonly cooldown: number;
}

/** The plain values of an `ExecutorConfig` (what `toJSON()` returns and the constructor takes). */
export interface ExecutorConfigValues {
  /** `runCommand` timeout in ms when the command has none. > 0. */
  readonly defaultTimeout: number;
  /** Retries after the first attempt; attempts = maxRetries + 1. Integer 0–100. */
  readonly maxRetries: number;
  /** Delay in ms before the first retry. ≥ 0. */
  readonly retryBackoff: number;
  /** Cap in ms on any retry delay. ≥ retryBackoff. */
  readonly maxRetryDelay: number;
  /** Delay growth per retry. ≥ 1. */
  readonly retryMultiplier: number;
  /** Fraction 0..1 of each delay randomised downwards. */
  readonly retryJitter: number;
  /** Budget in ms for sudo's password prompt to appear and be answered. > 0. */
  readonly sudoTimeout: number;
  /** `runScript` timeout in ms when the script has none. > 0. */
  readonly scriptTimeout: number;
  /** `transferFile` timeout in ms when the transfer has none. > 0. */
  readonly transferTimeout: number;
  /** Release leases for reuse (`true`), or destroy each connection after its operation (`false`). */
  readonly connectionReuse: boolean;
  /** Operations the executor runs at once; more wait in line. Integer ≥ 1. */
  readonly maxConcurrent: number;
  /** Per-stream output cap in bytes when the request has none. Integer ≥ 1. */
  readonly maxOutputBytes: number;
  readonly breaker: BreakerConfig;
}

/** A partial update for `ExecutorConfig.with()`; `breaker` may be partial too. */
export type ExecutorConfigChanges = Partial<Omit<ExecutorConfigValues, "breaker">> & {
  readonly breaker?: Partial<BreakerConfig>;
};

const MAX_RETRIES = 100;
const KEYS: ReadonlySet<string> = new Set([
  "defaultTimeout",
  "maxRetries",
  "retryBackoff",
  "maxRetryDelay",
  "retryMultiplier",
  "retryJitter",
  "sudoTimeout",
  "scriptTimeout",
  "transferTimeout",
  "connectionReuse",
  "maxConcurrent",
  "maxOutputBytes",
  "breaker",
]);

function show(value: unknown): string {
  if (typeof value === "string") return JSON.stringify(value);
  if (value === null || typeof value !== "object") return String(value);
  return Array.isArray(value) ? "an array" : "an object";
}

function milliseconds(value: unknown, field: string, allowZero = false): void {
  if (typeof value !== "number" || !Number.isFinite(value) || value < 0 || (!allowZero && value === 0)) {
    throw new ConfigError(field, `must be a ${allowZero ? "non-negative" : "positive"} finite number of milliseconds, got ${show(value)}`);
  }
  if (value > MAX_TIMEOUT_MS) throw new ConfigError(field, `must be at most ${MAX_TIMEOUT_MS} ms, got ${value}`);
}

function integer(value: unknown, field: string, min: number, max = Number.MAX_SAFE_INTEGER): void {
  if (typeof value !== "number" || !Number.isInteger(value) || value < min || value > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? `≥ ${min}` : `from ${min} to ${max}`;
    throw new ConfigError(field, `must be an integer ${range}, got ${show(value)}`);
  }
}

/**
 * Check a configuration object — an `ExecutorConfig` or plain values, e.g. parsed from a file. Throws
 * `ConfigError` naming the first field at fault (`breaker.cooldown`, ...), including unknown fields (typos).
 */
export function validateExecutorConfig(config: unknown): asserts config is ExecutorConfigValues {
  if (typeof config !== "object" || config === null || Array.isArray(config)) {
    throw new ConfigError("config", `must be an object, got ${show(config)}`);
  }
  const values = config as Record<string, unknown>;
  rejectUnknownOptions(values, KEYS, "ExecutorConfig");
  for (const key of KEYS) {
    if (values[key] === undefined) throw new ConfigError(key, "is required");
  }
  milliseconds(values.defaultTimeout, "defaultTimeout");
  integer(values.maxRetries, "maxRetries", 0, MAX_RETRIES);
  milliseconds(values.retryBackoff, "retryBackoff", true);
  milliseconds(values.maxRetryDelay, "maxRetryDelay", true);
  if ((values.maxRetryDelay as number) < (values.retryBackoff as number)) {
    throw new ConfigError("maxRetryDelay", `must be at least retryBackoff (${values.retryBackoff as number} ms), got ${values.maxRetryDelay as number}`);
  }
  const multiplier = values.retryMultiplier;
  if (typeof multiplier !== "number" || !Number.isFinite(multiplier) || multiplier < 1) {
    throw new ConfigError("retryMultiplier", `must be a finite number ≥ 1, got ${show(multiplier)}`);
  }
  const jitter = values.retryJitter;
  if (typeof jitter !== "number" || !(jitter >= 0 && jitter <= 1)) {
    throw new ConfigError("retryJitter", `must be a fraction from 0 to 1, got ${show(jitter)}`);
  }
  milliseconds(values.sudoTimeout, "sudoTimeout");
  milliseconds(values.scriptTimeout, "scriptTimeout");
  milliseconds(values.transferTimeout, "transferTimeout");
  if (typeof values.connectionReuse !== "boolean") {
    throw new ConfigError("connectionReuse", `must be true or false, got ${show(values.connectionReuse)}`);
  }
  integer(values.maxConcurrent, "maxConcurrent", 1);
  integer(values.maxOutputBytes, "maxOutputBytes", 1);
  const breaker = values.breaker;
  if (typeof breaker !== "object" || breaker === null || Array.isArray(breaker)) {
    throw new ConfigError("breaker", `must be { failureThreshold, cooldown }, got ${show(breaker)}`);
  }
  const breakerValues = breaker as Record<string, unknown>;
  rejectUnknownOptions(breakerValues, ["failureThreshold", "cooldown"], "ExecutorConfig", { path: "breaker" });
  integer(breakerValues.failureThreshold, "breaker.failureThreshold", 1);
  milliseconds(breakerValues.cooldown, "breaker.cooldown");
}

/** An immutable, validated executor configuration. Build one from a preset and `withX()`. */
export class ExecutorConfig implements ExecutorConfigValues {
  readonly defaultTimeout: number;
  readonly maxRetries: number;
  readonly retryBackoff: number;
  readonly maxRetryDelay: number;
  readonly retryMultiplier: number;
  readonly retryJitter: number;
  readonly sudoTimeout: number;
  readonly scriptTimeout: number;
  readonly transferTimeout: number;
  readonly connectionReuse: boolean;
  readonly maxConcurrent: number;
  readonly maxOutputBytes: number;
  readonly breaker: BreakerConfig;

  /** Validates `values` (throws `ConfigError`) and freezes the result. */
  constructor(values: ExecutorConfigValues) {
    const copy = { ...values, breaker: values.breaker && { ...values.breaker } };
    validateExecutorConfig(copy);
    this.defaultTimeout = copy.defaultTimeout;
    this.maxRetries = copy.maxRetries;
    this.retryBackoff = copy.retryBackoff;
    this.maxRetryDelay = copy.maxRetryDelay;
    this.retryMultiplier = copy.retryMultiplier;
    this.retryJitter = copy.retryJitter;
    this.sudoTimeout = copy.sudoTimeout;
    this.scriptTimeout = copy.scriptTimeout;
    this.transferTimeout = copy.transferTimeout;
    this.connectionReuse = copy.connectionReuse;
    this.maxConcurrent = copy.maxConcurrent;
    this.maxOutputBytes = copy.maxOutputBytes;
    this.breaker = Object.freeze({ failureThreshold: copy.breaker.failureThreshold, cooldown: copy.breaker.cooldown });
    Object.freeze(this);
  }

  /** A new config with `changes` applied (validated). */
  with(changes: ExecutorConfigChanges): ExecutorConfig {
    return new ExecutorConfig({ ...this.toJSON(), ...changes, breaker: { ...this.breaker, ...changes.breaker } });
  }

  /** Check the configuration again; throws `ConfigError`. Returns `this` for chaining. */
  validate(): this {
    validateExecutorConfig(this);
    return this;
  }

  withTimeout(ms: number): ExecutorConfig {
    return this.with({ defaultTimeout: ms });
  }
  /** Retries after the first attempt (0 = never retry). */
  withRetries(count: number): ExecutorConfig {
    return this.with({ maxRetries: count });
  }
  withRetryBackoff(ms: number): ExecutorConfig {
    return this.with({ retryBackoff: ms });
  }
  withMaxRetryDelay(ms: number): ExecutorConfig {
    return this.with({ maxRetryDelay: ms });
  }
  withRetryMultiplier(multiplier: number): ExecutorConfig {
    return this.with({ retryMultiplier: multiplier });
  }
  withRetryJitter(fraction: number): ExecutorConfig {
    return this.with({ retryJitter: fraction });
  }
  withSudoTimeout(ms: number): ExecutorConfig {
    return this.with({ sudoTimeout: ms });
  }
  withScriptTimeout(ms: number): ExecutorConfig {
    return this.with({ scriptTimeout: ms });
  }
  withTransferTimeout(ms: number): ExecutorConfig {
    return this.with({ transferTimeout: ms });
  }
  withConnectionReuse(reuse: boolean): ExecutorConfig {
    return this.with({ connectionReuse: reuse });
  }
  withMaxConcurrent(count: number): ExecutorConfig {
    return this.with({ maxConcurrent: count });
  }
  withMaxOutputBytes(bytes: number): ExecutorConfig {
    return this.with({ maxOutputBytes: bytes });
  }
  withBreaker(breaker: Partial<BreakerConfig>): ExecutorConfig {
    return this.with({ breaker });
  }

  /** The retry strategy these settings describe: `maxAttempts = maxRetries + 1`. */
  retryStrategy(): RetryStrategy {
    return {
      maxAttempts: this.maxRetries + 1,
      baseDelay: this.retryBackoff,
      maxDelay: this.maxRetryDelay,
      multiplier: this.retryMultiplier,
      jitter: this.retryJitter,
    };
  }

  /** The plain values (a fresh, unfrozen copy). */
  toJSON(): ExecutorConfigValues {
    return {
      defaultTimeout: this.defaultTimeout,
      maxRetries: this.maxRetries,
      retryBackoff: this.retryBackoff,
      maxRetryDelay: this.maxRetryDelay,
      retryMultiplier: this.retryMultiplier,
      retryJitter: this.retryJitter,
      sudoTimeout: this.sudoTimeout,
      scriptTimeout: this.scriptTimeout,
      transferTimeout: this.transferTimeout,
      connectionReuse: this.connectionReuse,
      maxConcurrent: this.maxConcurrent,
      maxOutputBytes: this.maxOutputBytes,
      breaker: { ...this.breaker },
    };
  }
}

const MiB = 1024 * 1024;

/** Balanced defaults (see the table at the top of this file). */
export function DefaultExecutorConfig(): ExecutorConfig {
  return new ExecutorConfig({
    defaultTimeout: 30_000,
    maxRetries: 2,
    retryBackoff: 500,
    maxRetryDelay: 10_000,
    retryMultiplier: 2,
    retryJitter: 0.2,
    sudoTimeout: 10_000,
    scriptTimeout: 300_000,
    transferTimeout: 600_000,
    connectionReuse: true,
    maxConcurrent: 10,
    maxOutputBytes: 10 * MiB,
    breaker: { failureThreshold: 5, cooldown: 30_000 },
  });
}

/** Fail fast for local work: short timeouts, one retry, no jitter (repeatable timing), quick breaker recovery. */
export function DevelopmentExecutorConfig(): ExecutorConfig {
  return new ExecutorConfig({
    defaultTimeout: 10_000,
    maxRetries: 1,
    retryBackoff: 200,
    maxRetryDelay: 2_000,
    retryMultiplier: 2,
    retryJitter: 0,
    sudoTimeout: 5_000,
    scriptTimeout: 60_000,
    transferTimeout: 120_000,
    connectionReuse: true,
    maxConcurrent: 4,
    maxOutputBytes: 1 * MiB,
    breaker: { failureThreshold: 3, cooldown: 5_000 },
  });
}

/** Patient and spread out for fleets: longer timeouts, more retries with more jitter, more concurrency. */
export function ProductionExecutorConfig(): ExecutorConfig {
  return new ExecutorConfig({
    defaultTimeout: 60_000,
    maxRetries: 3,
    retryBackoff: 1_000,
    maxRetryDelay: 30_000,
    retryMultiplier: 2,
    retryJitter: 0.3,
    sudoTimeout: 15_000,
    scriptTimeout: 600_000,
    transferTimeout: 1_800_000,
    connectionReuse: true,
    maxConcurrent: 50,
    maxOutputBytes: 16 * MiB,
    breaker: { failureThreshold: 5, cooldown: 60_000 },
  });
}
