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
 * even when two copies of `@tunnel/core` are installed; `instanceof` does not.
 *
 * Messages never contain secrets: passwords and passphrases are redacted before an error is built.
 */
import type { Result, Target } from "./types.js";
export type ErrorPhase = "validate" | "connect" | "auth" | "channel" | "exec" | "transfer";
export type ErrorCode = "VALIDATION" | "CONFIG" | "CONNECT" | "CONNECTION_LOST" | "AUTHENTICATION" | "HOST_KEY" | "CHANNEL" | "TIMEOUT" | "ABORTED" | "TRANSFER" | "SUDO" | "CIRCUIT_OPEN" | "COMMAND_FAILED" | "RETRIES_EXHAUSTED" | "POOL_CLOSED" | "POOL_TIMEOUT";
declare const brand: unique symbol;
export interface TunnelErrorOptions {
    readonly phase: ErrorPhase;
    readonly retryable?: boolean;
    readonly target?: Target | undefined;
    readonly cause?: unknown;
}
/** A target rendered for messages: `user@host:port`. */
export declare function formatTarget(target: Target | undefined): string;
export declare class TunnelError extends Error {
    readonly name: string;
    readonly code: ErrorCode;
    readonly phase: ErrorPhase;
    readonly retryable: boolean;
    readonly target: Target | undefined;
    readonly [brand] = true;
    constructor(code: ErrorCode, message: string, options: TunnelErrorOptions);
    /** True for any tunnel error, from this or another installed copy of `@tunnel/core`. */
    static is(error: unknown): error is TunnelError;
    /** A plain object for logs and JSON output; `cause` is summarised, never dumped whole. */
    toJSON(): Record<string, unknown>;
}
/** Is `error` a tunnel error with this code? Works across installed copies of core. */
export declare function hasCode(error: unknown, code: ErrorCode): error is TunnelError;
type Opt = Omit<TunnelErrorOptions, "phase"> & {
    readonly phase?: ErrorPhase;
};
/** A request failed validation before any network I/O. Never retryable. */
export declare class ValidationError extends TunnelError {
    readonly name = "ValidationError";
    /** The request field at fault, e.g. `env.PATH` or `port`. */
    readonly field: string;
    constructor(field: string, message: string, options?: Opt);
}
/** A configuration object (executor, pool, transport options) is invalid. Never retryable. */
export declare class ConfigError extends TunnelError {
    readonly name = "ConfigError";
    readonly field: string;
    constructor(field: string, message: string, options?: Opt);
}
/**
 * The connection could not be established (refused, DNS, timeout, handshake) — retryable by default —
 * or was lost (`code: "CONNECTION_LOST"`). A loss *while a command ran* is retried only for idempotent requests.
 */
export declare class ConnectError extends TunnelError {
    readonly name = "ConnectError";
    constructor(message: string, options?: Opt & {
        readonly lost?: boolean;
    });
}
/** The server refused every authentication method offered. Never retryable. */
export declare class AuthenticationError extends TunnelError {
    readonly name = "AuthenticationError";
    constructor(message: string, options?: Opt);
}
/** The host key is unknown, changed or revoked. Never retryable. */
export declare class HostKeyError extends TunnelError {
    readonly name = "HostKeyError";
    /** The fingerprint the server presented (`SHA256:…`), when known. */
    readonly fingerprint: string | undefined;
    constructor(message: string, options?: Opt & {
        readonly fingerprint?: string;
    });
}
/** A channel (session) could not be opened on a live connection, e.g. the server's MaxSessions. Retryable. */
export declare class ChannelError extends TunnelError {
    readonly name = "ChannelError";
    /** True when the server refused the channel because too many are open (a budget problem). */
    readonly refused: boolean;
    constructor(message: string, options?: Opt & {
        readonly refused?: boolean;
    });
}
/** An operation exceeded its time budget. The remote process was stopped. */
export declare class TimeoutError extends TunnelError {
    readonly name = "TimeoutError";
    readonly timeoutMs: number | undefined;
    constructor(message: string, options?: Opt & {
        readonly timeoutMs?: number;
    });
}
/** The caller's AbortSignal fired. Never retried. */
export declare class AbortError extends TunnelError {
    readonly name = "AbortError";
    constructor(message?: string, options?: Opt);
}
/** A file transfer failed (I/O, remote path, verification mismatch). */
export declare class TransferError extends TunnelError {
    readonly name = "TransferError";
    constructor(message: string, options?: Opt);
}
/** sudo failed: a password is required, the password was wrong, the user is not allowed. Never retryable. */
export declare class SudoError extends TunnelError {
    readonly name = "SudoError";
    readonly reason: "password-required" | "wrong-password" | "not-allowed" | "prompt-timeout" | "other";
    constructor(message: string, options: Opt & {
        readonly reason: SudoError["reason"];
    });
}
/** The host's circuit breaker is open: the operation failed fast without touching the network. */
export declare class CircuitOpenError extends TunnelError {
    readonly name = "CircuitOpenError";
    /** Milliseconds until the breaker lets a probe through. */
    readonly retryAfterMs: number;
    constructor(message: string, options: Opt & {
        readonly retryAfterMs: number;
    });
}
/** The command exited non-zero and the request asked for `check: true`. Carries the result. */
export declare class CommandFailedError extends TunnelError {
    readonly name = "CommandFailedError";
    readonly result: Result;
    constructor(result: Result, options?: Opt);
}
/** Every attempt failed with a retryable error. `errors` keeps each attempt's error, in order. */
export declare class RetriesExhaustedError extends TunnelError {
    readonly name = "RetriesExhaustedError";
    readonly errors: readonly unknown[];
    readonly attempts: number;
    constructor(errors: readonly unknown[], options?: Opt);
}
/** The pool is closed or destroyed; no new lease can be handed out. */
export declare class PoolClosedError extends TunnelError {
    readonly name = "PoolClosedError";
    constructor(message?: string, options?: Opt);
}
/** No lease could be had within the pool's acquire timeout. Retryable. */
export declare class PoolTimeoutError extends TunnelError {
    readonly name = "PoolTimeoutError";
    constructor(message: string, options?: Opt);
}
export {};
//# sourceMappingURL=errors.d.ts.map