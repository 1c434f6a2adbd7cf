/**
 * Retries with exponential backoff, abortable sleeps and a caller's deadline.
 *
 * `executeWithRetry` runs an operation up to `strategy.maxAttempts` times. Between attempts it sleeps
 * `computeBackoff(attempt)`; it never retries an abort; it never sleeps past `deadline`; and it asks
 * `shouldRetry(error, attempt)` (the executor passes `classifyError` from `classify.ts`) whether an error is
 * worth another attempt. How many attempts it took is always known: `{ value, attempts }` on success, and
 * `retryAttempts(error)` / `RetriesExhaustedError.attempts` on failure.
 *
 * @example
 * const { value, attempts } = await executeWithRetry((attempt) => runOnce(attempt), {
 *   strategy: { maxAttempts: 3, baseDelay: 200, maxDelay: 5_000, multiplier: 2, jitter: 0.2 },
 *   signal,
 *   shouldRetry: (error) => classifyError(error, { started, idempotent }).retryable,
 *   onRetry: ({ attempt, delayMs, error }) => span.addEvent("tunnel.retry", { "tunnel.attempt": attempt + 1, "tunnel.retry.delay": delayMs / 1000 }),
 * });
 */
import { abortErrorFrom, sleep } from "./abort.js";
import { RetriesExhaustedError, TunnelError } from "./errors.js";
import type { Target } from "./types.js";

/** How to space attempts. Times in milliseconds. */
export interface RetryStrategy {
  /** Attempts in total, including the first; at least 1. `1` means no retry. */
  readonly maxAttempts: number;
  /** Delay after the first failed attempt, before jitter. */
  readonly baseDelay: number;
  /** Upper bound of any delay. */
  readonly maxDelay: number;
  /** Growth per attempt: the delay after attempt `n` is `baseDelay * multiplier^(n-1)`, capped at `maxDelay`. */
  readonly multiplier: number;
  /**
   * Fraction 0..1 of the delay that is randomised downwards: the delay is uniform in
   * `[delay * (1 - jitter), delay]`. 0 = no jitter. Jitter never pushes a delay above `maxDelay`.
   */
  readonly jitter: number;
}

/**
 * The delay in whole milliseconds to wait after failed attempt number `attempt` (1-based) before the next one.
 * `random` returns a number in [0, 1), as `Math.random` does.
 * @example computeBackoff(3, { maxAttempts: 5, baseDelay: 100, maxDelay: 1000, multiplier: 2, jitter: 0 }) === 400
 */
export function computeBackoff(attempt: number, strategy: RetryStrategy, random: () => number = Math.random): number {
  const exponent = Math.max(0, attempt - 1);
  const raw = strategy.baseDelay * strategy.multiplier ** exponent;
  const capped = Math.min(strategy.maxDelay, Number.isFinite(raw) ? raw : strategy.maxDelay);
  const jitter = Math.min(1, Math.max(0, strategy.jitter));
  const sample = Math.min(1, Math.max(0, random()));
  return Math.max(0, Math.round(capped * (1 - jitter * sample)));
}

/** Passed to `onRetry` before each backoff sleep. */
export interface RetryInfo {
  /** The attempt that just failed (1-based); the next one is `attempt + 1`. */
  readonly attempt: number;
  /** How long the backoff sleep will be. */
  readonly delayMs: number;
  /** The error of the failed attempt. */
  readonly error: unknown;
}

export interface RetryOptions {
  readonly strategy: RetryStrategy;
  /** Aborting stops at once: no further attempt, and a backoff sleep in progress rejects immediately. */
  readonly signal?: AbortSignal;
  /**
   * Epoch milliseconds (as `Date.now()`): no retry is scheduled whose backoff sleep would end past it. The first
   * attempt always runs (bound it with `signal`, e.g. `AbortSignal.timeout`).
   */
  readonly deadline?: number;
  /**
   * Whether `error` from attempt `attempt` should be retried. Default: `TunnelError.is(error) && error.retryable`.
   * Aborts are never retried, whatever this says.
   */
  readonly shouldRetry?: (error: unknown, attempt: number) => boolean;
  /** Called before each backoff sleep. Must not throw (a throw is ignored). */
  readonly onRetry?: (info: RetryInfo) => void;
  /** Where to record counters; see `RetryStats`. */
  readonly stats?: RetryStats;
  /** The target, attached to a `RetriesExhaustedError`. */
  readonly target?: Target;
  /** Test seam: an abortable sleep. Default: `setTimeout`-based. */
  readonly sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  /** Test seam: the clock compared with `deadline`. Default `Date.now`. */
  readonly now?: () => number;
  /** Test seam: jitter source. Default `Math.random`. */
  readonly random?: () => number;
}

/** A successful run: the operation's value and how many attempts it took (1 when the first succeeded). */
export interface RetryOutcome<T> {
  readonly value: T;
  readonly attempts: number;
}

const attemptsByError = new WeakMap<object, number>();

/**
 * How many attempts `executeWithRetry` made before it threw `error` — the number to put in errors and results.
 * `undefined` for an error that did not come out of `executeWithRetry` (or a non-object thrown value).
 */
export function retryAttempts(error: unknown): number | undefined {
  if (typeof error === "object" && error !== null) return attemptsByError.get(error);
  return undefined;
}

function isAbort(error: unknown, signal: AbortSignal | undefined): boolean {
  if (signal?.aborted) return true;
  if (TunnelError.is(error)) return error.code === "ABORTED";
  return error instanceof Error && error.name === "AbortError";
}

function defaultShouldRetry(error: unknown): boolean {
  return TunnelError.is(error) && error.retryable;
}

function checkStrategy(strategy: RetryStrategy): void {
  const { maxAttempts, baseDelay, maxDelay, multiplier, jitter } = strategy;
  if (!Number.isInteger(maxAttempts) || maxAttempts < 1) throw new RangeError(`maxAttempts must be an integer ≥ 1, got ${maxAttempts}`);
  if (!(baseDelay >= 0) || !(maxDelay >= 0) || !Number.isFinite(maxDelay)) throw new RangeError("baseDelay and maxDelay must be finite and ≥ 0");
  if (!(multiplier >= 1) || !Number.isFinite(multiplier)) throw new RangeError(`multiplier must be finite and ≥ 1, got ${multiplier}`);
  if (!(jitter >= 0 && jitter <= 1)) throw new RangeError(`jitter must be within 0..1, got ${jitter}`);
}

function mark<E>(error: E, attempts: number): E {
  if (typeof error === "object" && error !== null) attemptsByError.set(error, attempts);
  return error;
}

/**
 * Run `operation(attempt)` until it succeeds, a non-retryable error occurs, attempts run out, the deadline
 * would be passed, or `signal` aborts.
 *
 * Throws:
 * - the original error, as is, when it is not retryable, when it is an abort, or when only one attempt was
 *   allowed (`maxAttempts: 1`);
 * - `RetriesExhaustedError` (every attempt's error in `errors`, the last as `cause`) when all attempts failed
 *   with retryable errors (`reason: "attempts"`), or when the next backoff would end past `deadline`
 *   (`reason: "deadline"`);
 * - an `AbortError` (or the signal's reason, when that is a tunnel error) when `signal` aborts before an attempt
 *   or during a backoff sleep.
 * In every case `retryAttempts(thrown)` tells how many attempts were made.
 */
export async function executeWithRetry<T>(operation: (attempt: number) => Promise<T>, options: RetryOptions): Promise<RetryOutcome<T>> {
  const { strategy, signal, deadline, stats } = options;
  checkStrategy(strategy);
  const shouldRetry = options.shouldRetry ?? defaultShouldRetry;
  const pause = options.sleep ?? sleep;
  const now = options.now ?? Date.now;
  const random = options.random ?? Math.random;
  const errors: unknown[] = [];
  stats?.recordOperation();

  const finish: (error: unknown, attempts: number) => never = (error, attempts) => {
    stats?.recordFailure(error);
    throw mark(error, attempts);
  };

  for (let attempt = 1; ; attempt++) {
    if (signal?.aborted) finish(abortErrorFrom(signal), attempt - 1);
    stats?.recordAttempt();
    try {
      const value = await operation(attempt);
      stats?.recordSuccess();
      return { value, attempts: attempt };
    } catch (error) {
      errors.push(error);
      if (isAbort(error, signal)) finish(error, attempt);
      if (strategy.maxAttempts === 1 || !shouldRetry(error, attempt)) finish(error, attempt);
      if (attempt >= strategy.maxAttempts) {
        finish(new RetriesExhaustedError([...errors], { reason: "attempts", ...(options.target ? { target: options.target } : {}) }), attempt);
      }
      const delayMs = computeBackoff(attempt, strategy, random);
      if (deadline !== undefined && now() + delayMs > deadline) {
        finish(new RetriesExhaustedError([...errors], { reason: "deadline", ...(options.target ? { target: options.target } : {}) }), attempt);
      }
      try {
        options.onRetry?.({ attempt, delayMs, error });
      } catch {
        // A listener must not change the outcome.
      }
      try {
        await pause(delayMs, signal);
      } catch (sleepError) {
        finish(signal?.aborted ? abortErrorFrom(signal) : sleepError, attempt);
      }
      stats?.recordRetry();
    }
  }
}

/** A snapshot of `RetryStats`. */
export interface RetryStatsSnapshot {
  /** Calls of `executeWithRetry` that recorded here. */
  readonly operations: number;
  /** Attempts started, first attempts included. */
  readonly attempts: number;
  /** Attempts that were retries (attempts after the first of their operation). */
  readonly retries: number;
  readonly successes: number;
  /** Operations that ended in an error. */
  readonly failures: number;
  /** Final errors by `TunnelError.code` (`UNKNOWN` for other errors). */
  readonly failuresByCode: Readonly<Record<string, number>>;
}

/**
 * Counters for retries, shared by every operation of an executor. Pass it as `RetryOptions.stats`.
 * @example const stats = new RetryStats(); await executeWithRetry(op, { strategy, stats }); stats.snapshot().retries
 */
export class RetryStats {
  #operations = 0;
  #attempts = 0;
  #retries = 0;
  #successes = 0;
  #failures = 0;
  #failuresByCode = new Map<string, number>();

  recordOperation(): void {
    this.#operations++;
  }
  recordAttempt(): void {
    this.#attempts++;
  }
  recordRetry(): void {
    this.#retries++;
  }
  recordSuccess(): void {
    this.#successes++;
  }
  recordFailure(error: unknown): void {
    this.#failures++;
    const code = TunnelError.is(error) ? error.code : "UNKNOWN";
    this.#failuresByCode.set(code, (this.#failuresByCode.get(code) ?? 0) + 1);
  }

  snapshot(): RetryStatsSnapshot {
    return {
      operations: this.#operations,
      attempts: this.#attempts,
      retries: this.#retries,
      successes: this.#successes,
      failures: this.#failures,
      failuresByCode: Object.fromEntries(this.#failuresByCode),
    };
  }

  reset(): void {
    this.#operations = this.#attempts = this.#retries = this.#successes = this.#failures = 0;
    this.#failuresByCode.clear();
  }
}
