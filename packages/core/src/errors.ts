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
 * Errors are branded with `Symbol.for("tunnel.error")`, so `TunnelError.is(error)` recognises them
 * even when two copies of `@tunnel-sh/core` are installed; `instanceof` does not.
 *
 * Messages never contain secrets: passwords and passphrases are redacted before an error is built.
 */
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

export interface TunnelErrorOptions {
  readonly phase: ErrorPhase;
  readonly retryable?: boolean;
  readonly target?: Target | undefined;
  readonly cause?: unknown;
}

/** A target rendered for messages: `user@host:port`. */
export function formatTarget(target: Target | undefined): string {
  if (!target) return "";
  const user = target.user ? `${target.user}@` : "";
  const port = target.port !== undefined ? `:${target.port}` : "";
  return `${user}${target.host}${port}`;
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
  /** The request field at fault, e.g. `env.PATH` or `port`. */
  readonly field: string;
  constructor(field: string, message: string, options: Opt = {}) {
    super("VALIDATION", `${field}: ${message}`, { ...options, phase: "validate", retryable: false });
    this.field = field;
  }
}

/** A configuration object (executor, pool, transport options) is invalid. Never retryable. */
export class ConfigError extends TunnelError {
  override readonly name = "ConfigError";
  readonly field: string;
  constructor(field: string, message: string, options: Opt = {}) {
    super("CONFIG", `${field}: ${message}`, { ...options, phase: "validate", retryable: false });
    this.field = field;
  }
}

/**
 * The connection could not be established (refused, DNS, timeout, handshake) — retryable by default —
 * or was lost (`code: "CONNECTION_LOST"`). A loss *while a command ran* is retried only for idempotent requests.
 */
export class ConnectError extends TunnelError {
  override readonly name = "ConnectError";
  constructor(message: string, options: Opt & { readonly lost?: boolean } = {}) {
    super(options.lost ? "CONNECTION_LOST" : "CONNECT", message, {
      retryable: true,
      ...options,
      phase: options.phase ?? "connect",
    });
  }
}

/** The server refused every authentication method offered. Never retryable. */
export class AuthenticationError extends TunnelError {
  override readonly name = "AuthenticationError";
  constructor(message: string, options: Opt = {}) {
    super("AUTHENTICATION", message, { ...options, phase: "auth", retryable: false });
  }
}

/** The host key is unknown, changed or revoked. Never retryable. */
export class HostKeyError extends TunnelError {
  override readonly name = "HostKeyError";
  /** The fingerprint the server presented (`SHA256:…`), when known. */
  readonly fingerprint: string | undefined;
  constructor(message: string, options: Opt & { readonly fingerprint?: string } = {}) {
    super("HOST_KEY", message, { ...options, phase: "connect", retryable: false });
    this.fingerprint = options.fingerprint;
  }
}

/** A channel (session) could not be opened on a live connection, e.g. the server's MaxSessions. Retryable. */
export class ChannelError extends TunnelError {
  override readonly name = "ChannelError";
  /** True when the server refused the channel because too many are open (a budget problem). */
  readonly refused: boolean;
  constructor(message: string, options: Opt & { readonly refused?: boolean } = {}) {
    super("CHANNEL", message, { retryable: true, ...options, phase: options.phase ?? "channel" });
    this.refused = options.refused ?? false;
  }
}

/** An operation exceeded its time budget. The remote process was stopped. */
export class TimeoutError extends TunnelError {
  override readonly name = "TimeoutError";
  readonly timeoutMs: number | undefined;
  constructor(message: string, options: Opt & { readonly timeoutMs?: number } = {}) {
    super("TIMEOUT", message, { retryable: false, ...options, phase: options.phase ?? "exec" });
    this.timeoutMs = options.timeoutMs;
  }
}

/** The caller's AbortSignal fired. Never retried. */
export class AbortError extends TunnelError {
  override readonly name = "AbortError";
  constructor(message = "the operation was aborted", options: Opt = {}) {
    super("ABORTED", message, { ...options, phase: options.phase ?? "exec", retryable: false });
  }
}

/** A file transfer failed (I/O, remote path, verification mismatch). */
export class TransferError extends TunnelError {
  override readonly name = "TransferError";
  constructor(message: string, options: Opt = {}) {
    super("TRANSFER", message, { retryable: false, ...options, phase: "transfer" });
  }
}

/** sudo failed: a password is required, the password was wrong, the user is not allowed. Never retryable. */
export class SudoError extends TunnelError {
  override readonly name = "SudoError";
  readonly reason: "password-required" | "wrong-password" | "not-allowed" | "prompt-timeout" | "other";
  constructor(message: string, options: Opt & { readonly reason: SudoError["reason"] }) {
    super("SUDO", message, { ...options, phase: "exec", retryable: false });
    this.reason = options.reason;
  }
}

/** The host's circuit breaker is open: the operation failed fast without touching the network. */
export class CircuitOpenError extends TunnelError {
  override readonly name = "CircuitOpenError";
  /** Milliseconds until the breaker lets a probe through. */
  readonly retryAfterMs: number;
  constructor(message: string, options: Opt & { readonly retryAfterMs: number }) {
    super("CIRCUIT_OPEN", message, { ...options, phase: "connect", retryable: false });
    this.retryAfterMs = options.retryAfterMs;
  }
}

/** The command exited non-zero and the request asked for `check: true`. Carries the result. */
export class CommandFailedError extends TunnelError {
  override readonly name = "CommandFailedError";
  readonly result: Result;
  constructor(result: Result, options: Opt = {}) {
    const how = result.signal ? `was killed by ${result.signal}` : `exited with code ${result.exitCode}`;
    super("COMMAND_FAILED", `the command ${how} on ${result.host}`, { ...options, phase: "exec", retryable: false });
    this.result = result;
  }
}

/** Every attempt failed with a retryable error. `errors` keeps each attempt's error, in order. */
export class RetriesExhaustedError extends TunnelError {
  override readonly name = "RetriesExhaustedError";
  readonly errors: readonly unknown[];
  readonly attempts: number;
  constructor(errors: readonly unknown[], options: Opt = {}) {
    const last = errors[errors.length - 1];
    const lastMessage = last instanceof Error ? last.message : String(last);
    const phase = options.phase ?? (TunnelError.is(last) ? last.phase : "exec");
    super("RETRIES_EXHAUSTED", `failed after ${errors.length} attempts: ${lastMessage}`, {
      ...options,
      phase,
      retryable: false,
      cause: last,
    });
    this.errors = errors;
    this.attempts = errors.length;
  }
}

/** The pool is closed or destroyed; no new lease can be handed out. */
export class PoolClosedError extends TunnelError {
  override readonly name = "PoolClosedError";
  constructor(message = "the connection pool is closed", options: Opt = {}) {
    super("POOL_CLOSED", message, { ...options, phase: "connect", retryable: false });
  }
}

/** No lease could be had within the pool's acquire timeout. Retryable. */
export class PoolTimeoutError extends TunnelError {
  override readonly name = "PoolTimeoutError";
  constructor(message: string, options: Opt = {}) {
    super("POOL_TIMEOUT", message, { retryable: true, ...options, phase: "connect" });
  }
}

/**
 * Whether the operation ran, and how it ended, cannot be known: whoever ran it (a queue worker) stopped in the middle.
 * Never retryable: it is repeated only when the request said it is idempotent, by whoever can tell.
 */
export class OutcomeUnknownError extends TunnelError {
  override readonly name = "OutcomeUnknownError";
  constructor(message: string, options: Opt = {}) {
    super("OUTCOME_UNKNOWN", message, { ...options, phase: options.phase ?? "exec", retryable: false });
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
  readonly reason: "shell" | "tool" | "pty" | "session" | "sftp";
  /** The host's message (first stderr line), when it gave one. */
  readonly detail: string | undefined;
  constructor(message: string, options: Opt & { readonly reason: UnsupportedHostError["reason"]; readonly detail?: string }) {
    super("UNSUPPORTED_HOST", message, { ...options, phase: options.phase ?? "exec", retryable: false });
    this.reason = options.reason;
    this.detail = options.detail;
  }
}
