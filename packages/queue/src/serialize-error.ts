/**
 * Typed errors across Redis: a worker turns a `TunnelError` into JSON, the producer turns it back into the same
 * class with the same code, message, phase, target and details, so callers branch on `code` as they would locally.
 */
import {
  AbortError,
  AuthenticationError,
  ChannelError,
  CircuitOpenError,
  CommandFailedError,
  ConfigError,
  ConnectError,
  HostKeyError,
  OutcomeUnknownError,
  PoolClosedError,
  PoolTimeoutError,
  RetriesExhaustedError,
  SudoError,
  TimeoutError,
  TransferError,
  TunnelError,
  UnsupportedHostError,
  ValidationError,
} from "@tunnel-sh/core";
import type { ErrorCode, ErrorPhase, Result, Target } from "@tunnel-sh/core";

export interface SerializedError {
  readonly name: string;
  readonly code: ErrorCode;
  readonly message: string;
  readonly phase: ErrorPhase;
  readonly retryable: boolean;
  readonly target?: Target;
  readonly field?: string;
  readonly reason?: string;
  /** The host's own message, for `UNSUPPORTED_HOST`. */
  readonly detail?: string;
  readonly retryAfterMs?: number;
  readonly timeoutMs?: number;
  readonly fingerprint?: string;
  readonly refused?: boolean;
  readonly result?: Result;
  /** Each attempt's error, for `RETRIES_EXHAUSTED`. */
  readonly errors?: readonly SerializedError[];
}

const MAX_NESTED_ERRORS = 20;

const SUDO_REASONS: ReadonlySet<string> = new Set<SudoError["reason"]>(["password-required", "wrong-password", "not-allowed", "prompt-timeout", "other"]);

const UNSUPPORTED_REASONS: ReadonlySet<string> = new Set<UnsupportedHostError["reason"]>(["shell", "tool", "pty", "session", "sftp"]);

function isUnsupportedReason(reason: string | undefined): reason is UnsupportedHostError["reason"] {
  return reason !== undefined && UNSUPPORTED_REASONS.has(reason);
}

function isSudoReason(reason: string | undefined): reason is SudoError["reason"] {
  return reason !== undefined && SUDO_REASONS.has(reason);
}

export function serializeError(error: unknown): SerializedError {
  if (!TunnelError.is(error)) {
    const message = error instanceof Error ? error.message : String(error);
    return {
      name: "OutcomeUnknownError",
      code: "OUTCOME_UNKNOWN",
      message: `the worker failed outside the operation: ${message}`,
      phase: "exec",
      retryable: false,
    };
  }
  const field = ValidationError.is(error) || ConfigError.is(error) ? error.field : undefined;
  const reason = SudoError.is(error) || RetriesExhaustedError.is(error) || UnsupportedHostError.is(error) ? error.reason : undefined;
  const detail = UnsupportedHostError.is(error) ? error.detail : undefined;
  const fingerprint = HostKeyError.is(error) ? error.fingerprint : undefined;
  const retryAfterMs = CircuitOpenError.is(error) ? error.retryAfterMs : undefined;
  const timeoutMs = TimeoutError.is(error) ? error.timeoutMs : undefined;
  const refused = ChannelError.is(error) ? error.refused : undefined;
  const result = CommandFailedError.is(error) ? error.result : undefined;
  const errors = RetriesExhaustedError.is(error) ? error.errors : undefined;
  return {
    name: error.name,
    code: error.code,
    message: error.message,
    phase: error.phase,
    retryable: error.retryable,
    // The target alone: an error's target object may be a whole request (command, env), which stays out of Redis.
    ...(error.target
      ? {
          target: {
            host: error.target.host,
            ...(error.target.port !== undefined ? { port: error.target.port } : {}),
            ...(error.target.user !== undefined ? { user: error.target.user } : {}),
          },
        }
      : {}),
    ...(field !== undefined ? { field } : {}),
    ...(reason !== undefined ? { reason } : {}),
    ...(detail !== undefined ? { detail } : {}),
    ...(fingerprint !== undefined ? { fingerprint } : {}),
    ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
    ...(timeoutMs !== undefined ? { timeoutMs } : {}),
    ...(refused !== undefined ? { refused } : {}),
    ...(result ? { result } : {}),
    ...(errors ? { errors: errors.slice(0, MAX_NESTED_ERRORS).map(serializeError) } : {}),
  };
}

/** The error a worker reported, rebuilt as the class its code belongs to. */
export function deserializeError(data: SerializedError): TunnelError {
  const options = { target: data.target, phase: data.phase };
  const stripField = (field: string) => (data.message.startsWith(`${field}: `) ? data.message.slice(field.length + 2) : data.message);
  let error: TunnelError;
  switch (data.code) {
    case "VALIDATION":
      return new ValidationError(data.field ?? "request", stripField(data.field ?? "request"), options);
    case "CONFIG":
      return new ConfigError(data.field ?? "config", stripField(data.field ?? "config"), options);
    case "CONNECT":
    case "CONNECTION_LOST":
      error = new ConnectError(data.message, { ...options, lost: data.code === "CONNECTION_LOST", retryable: data.retryable });
      break;
    case "AUTHENTICATION":
      error = new AuthenticationError(data.message, options);
      break;
    case "HOST_KEY":
      error = new HostKeyError(data.message, { ...options, ...(data.fingerprint !== undefined ? { fingerprint: data.fingerprint } : {}) });
      break;
    case "CHANNEL":
      error = new ChannelError(data.message, { ...options, refused: data.refused === true });
      break;
    case "TIMEOUT":
      error = new TimeoutError(data.message, { ...options, ...(data.timeoutMs !== undefined ? { timeoutMs: data.timeoutMs } : {}) });
      break;
    case "ABORTED":
      error = new AbortError(data.message, options);
      break;
    case "TRANSFER":
      error = new TransferError(data.message, options);
      break;
    case "SUDO":
      error = new SudoError(data.message, { ...options, reason: isSudoReason(data.reason) ? data.reason : "other" });
      break;
    case "CIRCUIT_OPEN":
      error = new CircuitOpenError(data.message, { ...options, retryAfterMs: data.retryAfterMs ?? 0 });
      break;
    case "COMMAND_FAILED":
      if (data.result) {
        error = new CommandFailedError(data.result, options);
        break;
      }
      error = new OutcomeUnknownError(data.message, options);
      break;
    case "RETRIES_EXHAUSTED":
      error = new RetriesExhaustedError((data.errors ?? []).map(deserializeError), {
        ...options,
        reason: data.reason === "deadline" ? "deadline" : "attempts",
      });
      break;
    case "UNSUPPORTED_HOST":
      // A reason this copy does not know cannot be told apart from an outcome nobody knows.
      error = isUnsupportedReason(data.reason)
        ? new UnsupportedHostError(data.message, { ...options, reason: data.reason, ...(data.detail !== undefined ? { detail: data.detail } : {}) })
        : new OutcomeUnknownError(data.message, options);
      break;
    case "POOL_CLOSED":
      error = new PoolClosedError(data.message, options);
      break;
    case "POOL_TIMEOUT":
      error = new PoolTimeoutError(data.message, options);
      break;
    default:
      error = new OutcomeUnknownError(data.message, options);
  }
  // Classes that build their own message (from a result, from the attempts) get the worker's exact words back.
  if (error.message !== data.message) Object.defineProperty(error, "message", { value: data.message, writable: true, configurable: true, enumerable: false });
  return error;
}
