/**
 * tunnel's one error vocabulary.
 *
 * Every failure that leaves a tunnel package is a `TunnelError` (or a subclass) with:
 * - `code`: a stable string callers branch on (never parse `message`);
 * - `retryable`: whether repeating the operation is safe and may help;
 * - `phase`: where it failed — `validate` | `connect` | `auth` | `channel` | `exec` | `transfer`;
 * - `target`: the host it concerns, when there is one;
 * - `cause`: the original error (a vendor error, an errno error, ...).
 *
 * Errors are branded with `Symbol.for("tunnel.error")`, and each class with `Symbol.for("tunnel.error.<ClassName>")`,
 * so `TunnelError.is(error)` and every class's own `is()` (`AuthenticationError.is(error)`, which narrows to the
 * class with its fields) recognise them even when two copies of `@tunnel-sh/core` are installed; `instanceof`
 * does not.
 *
 * Messages never contain secrets: passwords and passphrases are redacted before an error is built.
 */
import { formatTarget } from "./target.js";
import type { Result, Target } from "./types.js";

export type ErrorPhase = "validate" | "connect" | "auth" | "channel" | "exec" | "transfer";

export type ErrorCode =
  | "VALIDATION"
  | "CONFIG"
  | "CONNECT"
  | "CONNECTION_LOST"
  | "AUTHENTICATION"
  | "HOST_KEY"
  | "CHANNEL"
  | "TIMEOUT"
  | "ABORTED"
  | "TRANSFER"
  | "SUDO"
  | "CIRCUIT_OPEN"
  | "COMMAND_FAILED"
  | "RETRIES_EXHAUSTED"
  | "POOL_CLOSED"
  | "POOL_TIMEOUT"
  | "OUTCOME_UNKNOWN"
  | "UNSUPPORTED_HOST";

const brand = Symbol.for("tunnel.error");

/** The brand of one error class, the same symbol in every installed copy of core. */
function classBrand(className: string): symbol {
  return Symbol.for(`tunnel.error.${className}`);
}

/** Mark `error` as an instance of the class named `className` (a hidden property, kept by copies of the error). */
function brandAs(error: TunnelError, className: string): void {
  Object.defineProperty(error, classBrand(className), { value: true, enumerable: false, configurable: true });
}

function hasBrand(error: unknown, className: string): boolean {
  return typeof error === "object" && error !== null && (error as Record<symbol, unknown>)[classBrand(className)] === true;
}

export interface TunnelErrorOptions {
  readonly phase: ErrorPhase;
  readonly retryable?: boolean;
  readonly target?: Target | undefined;
  readonly cause?: unknown;
}

export class TunnelError extends Error {
  override readonly name: string = "TunnelError";
  readonly code: ErrorCode;
  readonly phase: ErrorPhase;
  readonly retryable: boolean;
  readonly target: Target | undefined;
  readonly [brand] = true;

  constructor(code: ErrorCode, message: string, options: TunnelErrorOptions) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.phase = options.phase;
    this.retryable = options.retryable ?? false;
    this.target = options.target;
  }

  /** True for any tunnel error, from this or another installed copy of `@tunnel-sh/core`. */
  static is(error: unknown): error is TunnelError {
    return typeof error === "object" && error !== null && (error as Record<symbol, unknown>)[brand] === true;
  }

  /** A plain object for logs and JSON output; `cause` is summarised, never dumped whole. */
  toJSON(): Record<string, unknown> {
    return {
      name: this.name,
      code: this.code,
      message: this.message,
      phase: this.phase,
      retryable: this.retryable,
      target: this.target ? formatTarget(this.target) : undefined,
      cause: this.cause instanceof Error ? { name: this.cause.name, message: this.cause.message } : undefined,
    };
  }
}

/** Is `error` a tunnel error with this code? Works across installed copies of core. */
export function hasCode(error: unknown, code: ErrorCode): error is TunnelError {
  return TunnelError.is(error) && error.code === code;
}

type Opt = Omit<TunnelErrorOptions, "phase"> & { readonly phase?: ErrorPhase };

/** A request failed validation before any network I/O. Never retryable. */
export class ValidationError extends TunnelError {
  override readonly name = "ValidationError";
  /** True for a `ValidationError` from this or another installed copy of `@tunnel-sh/core`; narrows to the class. */
  static override is(error: unknown): error is ValidationError {
    return hasBrand(error, "ValidationError");
  }
  /** The request field at fault, e.g. `env.PATH` or `port`. */
  readonly field: string;
  constructor(field: string, message: string, options: Opt = {}) {
    super("VALIDATION", `${field}: ${message}`, { ...options, phase: "validate", retryable: false });
    this.field = field;
    brandAs(this, "ValidationError");
  }
}

/** A configuration object (executor, pool, transport options) is invalid. Never retryable. */
export class ConfigError extends TunnelError {
  override readonly name = "ConfigError";
  /** True for a `ConfigError` from this or another installed copy of `@tunnel-sh/core`; narrows to the class. */
  static override is(error: unknown): error is ConfigError {
    return hasBrand(error, "ConfigError");
  }
  readonly field: string;
  constructor(field: string, message: string, options: Opt = {}) {
    super("CONFIG", `${field}: ${message}`, { ...options, phase: "validate", retryable: false });
    this.field = field;
    brandAs(this, "ConfigError");
  }
}

/**
 * The connection could not be established (refused, DNS, timeout, handshake) — retryable by default —
 * or was lost (`code: "CONNECTION_LOST"`). A loss *while a command ran* is retried only for idempotent requests.
 */
export class ConnectError extends TunnelError {
  override readonly name = "ConnectError";
  /** True for a `ConnectError` from this or another installed copy of `@tunnel-sh/core`; narrows to the class. */
  static override is(error: unknown): error is ConnectError {
    return hasBrand(error, "ConnectError");
  }
  constructor(message: string, options: Opt & { readonly lost?: boolean } = {}) {
    super(options.lost ? "CONNECTION_LOST" : "CONNECT", message, {
      retryable: true,
      ...options,
      phase: options.phase ?? "connect",
    });
    brandAs(this, "ConnectError");
  }
}

/** The server refused every authentication method offered. Never retryable. */
export class AuthenticationError extends TunnelError {
  override readonly name = "AuthenticationError";
  /** True for a `AuthenticationError` from this or another installed copy of `@tunnel-sh/core`; narrows to the class. */
  static override is(error: unknown): error is AuthenticationError {
    return hasBrand(error, "AuthenticationError");
  }
  constructor(message: string, options: Opt = {}) {
    super("AUTHENTICATION", message, { ...options, phase: "auth", retryable: false });
    brandAs(this, "AuthenticationError");
  }
}

/** The host key is unknown, changed or revoked. Never retryable. */
export class HostKeyError extends TunnelError {
  override readonly name = "HostKeyError";
  /** True for a `HostKeyError` from this or another installed copy of `@tunnel-sh/core`; narrows to the class. */
  static override is(error: unknown): error is HostKeyError {
    return hasBrand(error, "HostKeyError");
  }
  /** The fingerprint the server presented (`SHA256:…`), when known. */
  readonly fingerprint: string | undefined;
  constructor(message: string, options: Opt & { readonly fingerprint?: string } = {}) {
    super("HOST_KEY", message, { ...options, phase: "connect", retryable: false });
    this.fingerprint = options.fingerprint;
    brandAs(this, "HostKeyError");
  }
}

/** A channel (session) could not be opened on a live connection, e.g. the server's MaxSessions. Retryable. */
export class ChannelError extends TunnelError {
  override readonly name = "ChannelError";
  /** True for a `ChannelError` from this or another installed copy of `@tunnel-sh/core`; narrows to the class. */
  static override is(error: unknown): error is ChannelError {
    return hasBrand(error, "ChannelError");
  }
  /** True when the server refused the channel because too many are open (a budget problem). */
  readonly refused: boolean;
  constructor(message: string, options: Opt & { readonly refused?: boolean } = {}) {
    super("CHANNEL", message, { retryable: true, ...options, phase: options.phase ?? "channel" });
    this.refused = options.refused ?? false;
    brandAs(this, "ChannelError");
  }
}

/** An operation exceeded its time budget. The remote process was stopped. */
export class TimeoutError extends TunnelError {
  override readonly name = "TimeoutError";
  /** True for a `TimeoutError` from this or another installed copy of `@tunnel-sh/core`; narrows to the class. */
  static override is(error: unknown): error is TimeoutError {
    return hasBrand(error, "TimeoutError");
  }
  readonly timeoutMs: number | undefined;
  constructor(message: string, options: Opt & { readonly timeoutMs?: number } = {}) {
    super("TIMEOUT", message, { retryable: false, ...options, phase: options.phase ?? "exec" });
    this.timeoutMs = options.timeoutMs;
    brandAs(this, "TimeoutError");
  }
}

/** The caller's AbortSignal fired. Never retried. */
export class AbortError extends TunnelError {
  override readonly name = "AbortError";
  /** True for a `AbortError` from this or another installed copy of `@tunnel-sh/core`; narrows to the class. */
  static override is(error: unknown): error is AbortError {
    return hasBrand(error, "AbortError");
  }
  constructor(message = "the operation was aborted", options: Opt = {}) {
    super("ABORTED", message, { ...options, phase: options.phase ?? "exec", retryable: false });
    brandAs(this, "AbortError");
  }
}

/** A file transfer failed (I/O, remote path, verification mismatch). */
export class TransferError extends TunnelError {
  override readonly name = "TransferError";
  /** True for a `TransferError` from this or another installed copy of `@tunnel-sh/core`; narrows to the class. */
  static override is(error: unknown): error is TransferError {
    return hasBrand(error, "TransferError");
  }
  constructor(message: string, options: Opt = {}) {
    super("TRANSFER", message, { retryable: false, ...options, phase: "transfer" });
    brandAs(this, "TransferError");
  }
}

/** sudo failed: a password is required, the password was wrong, the user is not allowed. Never retryable. */
export class SudoError extends TunnelError {
  override readonly name = "SudoError";
  /** True for a `SudoError` from this or another installed copy of `@tunnel-sh/core`; narrows to the class. */
  static override is(error: unknown): error is SudoError {
    return hasBrand(error, "SudoError");
  }
  readonly reason: "password-required" | "wrong-password" | "not-allowed" | "prompt-timeout" | "other";
  constructor(message: string, options: Opt & { readonly reason: SudoError["reason"] }) {
    super("SUDO", message, { ...options, phase: "exec", retryable: false });
    this.reason = options.reason;
    brandAs(this, "SudoError");
  }
}

/** The host's circuit breaker is open: the operation failed fast without touching the network. */
export class CircuitOpenError extends TunnelError {
  override readonly name = "CircuitOpenError";
  /** True for a `CircuitOpenError` from this or another installed copy of `@tunnel-sh/core`; narrows to the class. */
  static override is(error: unknown): error is CircuitOpenError {
    return hasBrand(error, "CircuitOpenError");
  }
  /** Milliseconds until the breaker lets a probe through. */
  readonly retryAfterMs: number;
  constructor(message: string, options: Opt & { readonly retryAfterMs: number }) {
    super("CIRCUIT_OPEN", message, { ...options, phase: "connect", retryable: false });
    this.retryAfterMs = options.retryAfterMs;
    brandAs(this, "CircuitOpenError");
  }
}

/** The command exited non-zero and the request asked for `check: true`. Carries the result. */
export class CommandFailedError extends TunnelError {
  override readonly name = "CommandFailedError";
  /** True for a `CommandFailedError` from this or another installed copy of `@tunnel-sh/core`; narrows to the class. */
  static override is(error: unknown): error is CommandFailedError {
    return hasBrand(error, "CommandFailedError");
  }
  readonly result: Result;
  constructor(result: Result, options: Opt = {}) {
    const how = result.signal ? `was killed by ${result.signal}` : `exited with code ${result.exitCode}`;
    super("COMMAND_FAILED", `the command ${how} on ${result.host}`, { ...options, phase: "exec", retryable: false });
    this.result = result;
    brandAs(this, "CommandFailedError");
  }
}

/**
 * Why retrying stopped: `"attempts"` — every allowed attempt was made (`maxRetries` + 1); `"deadline"` — the next
 * backoff would have ended past the operation's deadline (its `timeout`), so no further attempt was started.
 */
export type RetriesExhaustedReason = "attempts" | "deadline";

/**
 * Every attempt failed with a retryable error, and no further attempt will be made (`reason` says whether the
 * attempts or the deadline ran out). `errors` keeps each attempt's error, in order; the last is the `cause`.
 */
export class RetriesExhaustedError extends TunnelError {
  override readonly name = "RetriesExhaustedError";
  /** True for a `RetriesExhaustedError` from this or another installed copy of `@tunnel-sh/core`; narrows to the class. */
  static override is(error: unknown): error is RetriesExhaustedError {
    return hasBrand(error, "RetriesExhaustedError");
  }
  readonly errors: readonly unknown[];
  readonly attempts: number;
  /** What ran out: the allowed attempts, or the time before the deadline. */
  readonly reason: RetriesExhaustedReason;
  constructor(errors: readonly unknown[], options: Opt & { readonly reason?: RetriesExhaustedReason } = {}) {
    const last = errors[errors.length - 1];
    const lastMessage = last instanceof Error ? last.message : String(last);
    const { reason = "attempts", ...rest } = options;
    const phase = rest.phase ?? (TunnelError.is(last) ? last.phase : "exec");
    super("RETRIES_EXHAUSTED", `failed after ${errors.length} attempts: ${lastMessage}`, {
      ...rest,
      phase,
      retryable: false,
      cause: last,
    });
    this.errors = errors;
    this.attempts = errors.length;
    this.reason = reason;
    brandAs(this, "RetriesExhaustedError");
  }
}

/** The pool is closed or destroyed; no new lease can be handed out. */
export class PoolClosedError extends TunnelError {
  override readonly name = "PoolClosedError";
  /** True for a `PoolClosedError` from this or another installed copy of `@tunnel-sh/core`; narrows to the class. */
  static override is(error: unknown): error is PoolClosedError {
    return hasBrand(error, "PoolClosedError");
  }
  constructor(message = "the connection pool is closed", options: Opt = {}) {
    super("POOL_CLOSED", message, { ...options, phase: "connect", retryable: false });
    brandAs(this, "PoolClosedError");
  }
}

/** No lease could be had within the pool's acquire timeout. Retryable. */
export class PoolTimeoutError extends TunnelError {
  override readonly name = "PoolTimeoutError";
  /** True for a `PoolTimeoutError` from this or another installed copy of `@tunnel-sh/core`; narrows to the class. */
  static override is(error: unknown): error is PoolTimeoutError {
    return hasBrand(error, "PoolTimeoutError");
  }
  constructor(message: string, options: Opt = {}) {
    super("POOL_TIMEOUT", message, { retryable: true, ...options, phase: "connect" });
    brandAs(this, "PoolTimeoutError");
  }
}

/**
 * Whether the operation ran, and how it ended, cannot be known: whoever ran it (a queue worker) stopped in the middle.
 * Never retryable: it is repeated only when the request said it is idempotent, by whoever can tell.
 */
export class OutcomeUnknownError extends TunnelError {
  override readonly name = "OutcomeUnknownError";
  /** True for a `OutcomeUnknownError` from this or another installed copy of `@tunnel-sh/core`; narrows to the class. */
  static override is(error: unknown): error is OutcomeUnknownError {
    return hasBrand(error, "OutcomeUnknownError");
  }
  constructor(message: string, options: Opt = {}) {
    super("OUTCOME_UNKNOWN", message, { ...options, phase: options.phase ?? "exec", retryable: false });
    brandAs(this, "OutcomeUnknownError");
  }
}

/**
 * The host cannot do what was asked, and asking again will not change that: its login shell did not run the
 * command (a `nologin` or restricted shell), a tool tunnel needs is missing, the server refused a pty, a session
 * beside a running one, or the SFTP subsystem. `detail` is the host's own line that says so (e.g.
 * `This account is currently not available.`). Never retryable.
 */
export class UnsupportedHostError extends TunnelError {
  override readonly name = "UnsupportedHostError";
  /** True for a `UnsupportedHostError` from this or another installed copy of `@tunnel-sh/core`; narrows to the class. */
  static override is(error: unknown): error is UnsupportedHostError {
    return hasBrand(error, "UnsupportedHostError");
  }
  readonly reason: "shell" | "tool" | "pty" | "session" | "sftp";
  /** The host's message (first stderr line), when it gave one. */
  readonly detail: string | undefined;
  constructor(message: string, options: Opt & { readonly reason: UnsupportedHostError["reason"]; readonly detail?: string }) {
    super("UNSUPPORTED_HOST", message, { ...options, phase: options.phase ?? "exec", retryable: false });
    this.reason = options.reason;
    this.detail = options.detail;
    brandAs(this, "UnsupportedHostError");
  }
}
