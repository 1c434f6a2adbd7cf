/**
 * Per-host circuit breakers: stop hammering a host that keeps failing to connect.
 *
 * States:
 * - `closed`: operations pass. `failureThreshold` consecutive connection failures open the breaker.
 * - `open`: operations fail fast with `CircuitOpenError` (`retryAfterMs` = time left of the cooldown),
 *   without touching the network. After `cooldown` ms the breaker becomes `half-open`.
 * - `half-open`: exactly one operation (the probe) passes; others fail fast (`retryAfterMs: 0`, "a probe is in
 *   flight"). Probe success → `closed`; probe connection failure → `open` again for another cooldown.
 *
 * What counts (see `breakerOutcome`):
 * - failure: connection-class errors only — `CONNECT` and `CONNECTION_LOST` — and each failed attempt counts on its
 *   own: an operation that tries to connect three times (two retries) and fails three times adds three failures
 *   (`CircuitPermit.attemptFailed`). So the breaker opens under any retry setting, after `failureThreshold` failed
 *   connect attempts in a row, and the attempt that opens it is the operation's last: no retry runs into an open
 *   breaker. Counting whole operations instead would make the threshold mean a different number of connect attempts
 *   for every `maxRetries`, and an operation whose retries ran out (`RETRIES_EXHAUSTED`) says nothing by itself;
 * - success: the host answered — a result (whatever its exit code), `COMMAND_FAILED`, `AUTHENTICATION`,
 *   `HOST_KEY`, `SUDO`, `CHANNEL`, `TRANSFER`, `UNSUPPORTED_HOST`. An authentication failure does NOT trip the breaker: the host is
 *   up, the problem is the credentials, and auth errors are never retried anyway, so they cannot hammer it;
 * - neutral (no verdict about the host): `TIMEOUT`, `ABORTED`, `VALIDATION`, `CONFIG`, `POOL_TIMEOUT`,
 *   `POOL_CLOSED`, `CIRCUIT_OPEN`, `RETRIES_EXHAUSTED`, `OUTCOME_UNKNOWN` and non-tunnel errors. A neutral probe frees the
 *   half-open slot for the next probe.
 *
 * The `open → half-open` move is lazy: it happens (and its listener fires) on the first `acquire()` or `state`
 * read after the cooldown; no timer is left running. The clock is injectable for tests.
 *
 * @example
 * const breakers = new CircuitBreakerRegistry({ failureThreshold: 5, cooldown: 30_000, onStateChange: trace });
 * const permit = breakers.acquire("deploy@web-1:22", target); // throws CircuitOpenError while open
 * try { const result = await attempt(); permit.success(); return result; }
 * catch (error) { permit.settle(error); throw error; }
 */
import { CircuitOpenError, TunnelError } from "./errors.js";
import { rejectUnknownOptions } from "./options.js";
import type { Target } from "./types.js";

export type CircuitState = "closed" | "open" | "half-open";

/** What one operation says about the host's health. */
export type BreakerOutcome = "success" | "failure" | "neutral";

const FAILURE_CODES = new Set(["CONNECT", "CONNECTION_LOST"]);
const SUCCESS_CODES = new Set(["COMMAND_FAILED", "AUTHENTICATION", "HOST_KEY", "SUDO", "CHANNEL", "TRANSFER", "UNSUPPORTED_HOST"]);

/** How an operation's error counts for the breaker (see the module comment). */
export function breakerOutcome(error: unknown): BreakerOutcome {
  if (!TunnelError.is(error)) return "neutral";
  if (FAILURE_CODES.has(error.code)) return "failure";
  if (SUCCESS_CODES.has(error.code)) return "success";
  return "neutral";
}

/** A state change, for traces. */
export interface CircuitStateChange {
  readonly key: string;
  readonly from: CircuitState;
  readonly to: CircuitState;
  /** Consecutive connection failures counted when the change happened. */
  readonly failures: number;
  /** Clock time of the change (ms). */
  readonly at: number;
  /** The error that opened the breaker, when it opened. */
  readonly error?: unknown;
}

export interface CircuitBreakerSettings {
  /** Consecutive connection failures that open the breaker; an integer ≥ 1. */
  readonly failureThreshold: number;
  /** Milliseconds the breaker stays open before it lets one probe through; > 0. */
  readonly cooldown: number;
}

export interface CircuitBreakerOptions extends CircuitBreakerSettings {
  /** Clock in milliseconds. Default `Date.now`. */
  readonly now?: () => number;
  /** Called on every state change. Must not throw (a throw is ignored). */
  readonly onStateChange?: (change: CircuitStateChange) => void;
}

/**
 * Permission for one operation. Settle it exactly once when the operation ends; later calls are ignored.
 * A probe permit that is never settled keeps the breaker half-open and failing fast, so settle in `finally`-style code.
 */
export interface CircuitPermit {
  /** True when this operation is the half-open probe. */
  readonly probe: boolean;
  /** The host answered. */
  success(): void;
  /** A connection-class failure (counts toward opening). */
  failure(error?: unknown): void;
  /** Says nothing about the host (timeout, abort, ...). */
  neutral(): void;
  /**
   * One attempt of the operation failed with `error`; the operation may go on with another attempt. A
   * connection-class failure counts at once (and is not counted again when the operation settles with it).
   * Returns whether the breaker still lets this operation make another attempt: false once it opened (or, for a probe,
   * once the probe failed).
   */
  attemptFailed(error: unknown): boolean;
  /** Settle from an error, classified by `breakerOutcome`. */
  settle(error: unknown): void;
}

const BREAKER_OPTIONS = Object.keys({ failureThreshold: true, cooldown: true, now: true, onStateChange: true } satisfies Record<
  keyof CircuitBreakerOptions,
  true
>);

function checkSettings(settings: CircuitBreakerSettings): void {
  if (!Number.isInteger(settings.failureThreshold) || settings.failureThreshold < 1) {
    throw new RangeError(`failureThreshold must be an integer ≥ 1, got ${settings.failureThreshold}`);
  }
  if (!(settings.cooldown > 0) || !Number.isFinite(settings.cooldown)) {
    throw new RangeError(`cooldown must be a positive finite number of milliseconds, got ${settings.cooldown}`);
  }
}

/** The breaker of one host key. */
export class CircuitBreaker {
  readonly key: string;
  #settings: CircuitBreakerSettings;
  readonly #now: () => number;
  readonly #listener: ((change: CircuitStateChange) => void) | undefined;
  #state: CircuitState = "closed";
  #failures = 0;
  #openedAt = 0;
  #probeInFlight = false;
  /** Bumped on every state change, so permits from an earlier state cannot move the current one. */
  #generation = 0;

  constructor(key: string, options: CircuitBreakerOptions) {
    rejectUnknownOptions(options, BREAKER_OPTIONS, "CircuitBreaker");
    checkSettings(options);
    this.key = key;
    this.#settings = { failureThreshold: options.failureThreshold, cooldown: options.cooldown };
    this.#now = options.now ?? Date.now;
    this.#listener = options.onStateChange;
  }

  /** The current state (moves `open` to `half-open` once the cooldown has passed). */
  get state(): CircuitState {
    this.#refresh();
    return this.#state;
  }

  /** Consecutive connection failures counted so far (reset by a success and on closing). */
  get failures(): number {
    return this.#failures;
  }

  /** Milliseconds until a probe may pass: 0 unless open. */
  get retryAfterMs(): number {
    this.#refresh();
    return this.#state === "open" ? Math.max(0, this.#openedAt + this.#settings.cooldown - this.#now()) : 0;
  }

  /** Change the threshold and cooldown; applies to decisions from now on. */
  configure(settings: CircuitBreakerSettings): void {
    checkSettings(settings);
    this.#settings = { failureThreshold: settings.failureThreshold, cooldown: settings.cooldown };
  }

  /**
   * Ask to run one operation. Returns a permit to settle, or throws `CircuitOpenError` while open or while
   * another half-open probe is in flight.
   */
  acquire(target?: Target): CircuitPermit {
    this.#refresh();
    if (this.#state === "open") {
      const retryAfterMs = this.retryAfterMs;
      throw new CircuitOpenError(
        `the circuit for ${this.key} is open after ${this.#failures} consecutive connection failures; next probe in ${retryAfterMs} ms`,
        { retryAfterMs, ...(target ? { target } : {}) },
      );
    }
    if (this.#state === "half-open") {
      if (this.#probeInFlight) {
        throw new CircuitOpenError(`the circuit for ${this.key} is half-open and a probe is in flight`, {
          retryAfterMs: 0,
          ...(target ? { target } : {}),
        });
      }
      this.#probeInFlight = true;
      return this.#permit(true);
    }
    return this.#permit(false);
  }

  /** Force the breaker closed and forget failures (an operator's reset). */
  reset(): void {
    this.#failures = 0;
    this.#probeInFlight = false;
    this.#transition("closed");
  }

  #permit(probe: boolean): CircuitPermit {
    const generation = this.#generation;
    let settled = false;
    /** A failed attempt of this operation was counted already: its final connection failure is not counted twice. */
    let counted = false;
    const settle = (outcome: BreakerOutcome, error?: unknown) => {
      if (settled) return;
      settled = true;
      this.#record(probe, generation, counted && outcome === "failure" ? "neutral" : outcome, error);
    };
    return {
      probe,
      success: () => settle("success"),
      failure: (error?: unknown) => settle("failure", error),
      neutral: () => settle("neutral"),
      settle: (error: unknown) => settle(breakerOutcome(error), error),
      attemptFailed: (error: unknown) => {
        if (settled) return false;
        if (breakerOutcome(error) === "failure") {
          this.#record(probe, generation, "failure", error);
          counted = true;
        }
        this.#refresh();
        return generation === this.#generation && (this.#state === "closed" || probe);
      },
    };
  }

  #record(probe: boolean, generation: number, outcome: BreakerOutcome, error: unknown): void {
    if (generation !== this.#generation) return;
    if (probe) {
      this.#probeInFlight = false;
      if (outcome === "success") {
        this.#failures = 0;
        this.#transition("closed");
      } else if (outcome === "failure") {
        this.#failures++;
        this.#open(error);
      }
      return;
    }
    if (this.#state !== "closed") return;
    if (outcome === "success") this.#failures = 0;
    else if (outcome === "failure") {
      this.#failures++;
      if (this.#failures >= this.#settings.failureThreshold) this.#open(error);
    }
  }

  #open(error: unknown): void {
    this.#openedAt = this.#now();
    this.#transition("open", error);
  }

  #refresh(): void {
    if (this.#state === "open" && this.#now() - this.#openedAt >= this.#settings.cooldown) {
      this.#probeInFlight = false;
      this.#transition("half-open");
    }
  }

  #transition(to: CircuitState, error?: unknown): void {
    const from = this.#state;
    if (from === to) return;
    this.#state = to;
    this.#generation++;
    try {
      this.#listener?.({
        key: this.key,
        from,
        to,
        failures: this.#failures,
        at: this.#now(),
        ...(error !== undefined ? { error } : {}),
      });
    } catch {
      // A listener must not break the breaker.
    }
  }
}

/**
 * Breakers by key (the pool key `user@host:port`), created on first use with shared settings.
 * @example const registry = new CircuitBreakerRegistry({ failureThreshold: 5, cooldown: 30_000 }); registry.state("deploy@web-1:22")
 */
export class CircuitBreakerRegistry {
  readonly #breakers = new Map<string, CircuitBreaker>();
  #settings: CircuitBreakerSettings;
  readonly #options: CircuitBreakerOptions;

  constructor(options: CircuitBreakerOptions) {
    rejectUnknownOptions(options, BREAKER_OPTIONS, "CircuitBreakerRegistry");
    checkSettings(options);
    this.#options = options;
    this.#settings = { failureThreshold: options.failureThreshold, cooldown: options.cooldown };
  }

  /** The breaker for `key`, created closed on first use. */
  get(key: string): CircuitBreaker {
    let breaker = this.#breakers.get(key);
    if (!breaker) {
      breaker = new CircuitBreaker(key, { ...this.#options, ...this.#settings });
      this.#breakers.set(key, breaker);
    }
    return breaker;
  }

  /** Shorthand for `get(key).acquire(target)`. */
  acquire(key: string, target?: Target): CircuitPermit {
    return this.get(key).acquire(target);
  }

  /** The state for `key`; `closed` for a key never seen. */
  state(key: string): CircuitState {
    return this.#breakers.get(key)?.state ?? "closed";
  }

  /** Every known key's state, for `executor.stats()`. */
  states(): Record<string, CircuitState> {
    return Object.fromEntries([...this.#breakers].map(([key, breaker]) => [key, breaker.state]));
  }

  /** New settings for every breaker, existing and future (the executor's `updateConfig`). */
  configure(settings: CircuitBreakerSettings): void {
    checkSettings(settings);
    this.#settings = { failureThreshold: settings.failureThreshold, cooldown: settings.cooldown };
    for (const breaker of this.#breakers.values()) breaker.configure(this.#settings);
  }

  /** Forget a key's breaker (it starts closed next time). Returns whether it existed. */
  delete(key: string): boolean {
    return this.#breakers.delete(key);
  }
}
