/**
 * Which failures are safe to retry — DESIGN.md's rule 2 as one table.
 *
 * | code | before the command started | after it started |
 * |---|---|---|
 * | `CONNECT`, `CHANNEL`, `POOL_TIMEOUT` | retry | retry only if `idempotent` (a transport should say `CONNECTION_LOST` then) |
 * | `CONNECTION_LOST` | retry, unless the command was already handed to the transport (`requested`) | retry only if `idempotent` |
 * | `TIMEOUT` | never | never |
 * | `AUTHENTICATION`, `HOST_KEY`, `VALIDATION`, `CONFIG`, `SUDO`, `ABORTED`, `CIRCUIT_OPEN`, `COMMAND_FAILED`, `POOL_CLOSED`, `TRANSFER`, `RETRIES_EXHAUSTED`, `UNSUPPORTED_HOST` | never | never |
 * | anything that is not a `TunnelError` | never | never |
 *
 * A retry needs positive evidence that the command never started. A refused or failed connect, a channel the server
 * refused, and a pool wait are such evidence. A connection lost after the exec request may have gone out is not: the
 * server may have started the command and the news of it was lost with the link, so that case counts as started.
 *
 * Why a `TIMEOUT` is never retried: the timeout is the caller's budget for the whole operation, not for one
 * attempt — retrying would multiply it; the command may well have run (partly), so it is not a "before start"
 * failure; and a host that is slow now is likely slow on the next attempt too. Connect-phase time-outs that are
 * safe to repeat reach core as `CONNECT` errors (the transport's handshake timeout), not as `TIMEOUT`.
 *
 * Unknown errors (a `TypeError` from a bug, a vendor error a transport failed to normalise) are not retried:
 * retrying cannot fix a bug, and an unclassified error might have come after the command started.
 *
 * An error's own `retryable: false` vetoes a retry the table would allow (a transport may know better, e.g. a
 * DNS name that does not exist); `retryable: true` never overrides a "never".
 */
import { TunnelError } from "./errors.js";
import type { ErrorCode } from "./errors.js";

/** What the executor knows about the attempt that failed. */
export interface ClassifyContext {
  /** The remote command had started (`RemoteProcess.started` resolved) when the error happened. */
  readonly started: boolean;
  /** The request said `idempotent: true`: running it twice is harmless. */
  readonly idempotent: boolean;
  /**
   * The command was handed to a live connection (`Connection.spawn`), so an exec request may have reached the server
   * even though `started` is still false. A lost connection is then no evidence that the command never ran.
   */
  readonly requested?: boolean;
}

/** The verdict: retry or not, and a short reason for traces and logs. */
export interface Classification {
  readonly retryable: boolean;
  readonly reason: string;
}

type Rule = (context: ClassifyContext) => Classification;

const never =
  (reason: string): Rule =>
  () => ({ retryable: false, reason });

/** Safe before the command started; after, only for idempotent requests. */
const beforeStart =
  (what: string): Rule =>
  ({ started, idempotent }) => {
    if (!started) return { retryable: true, reason: `${what} before the command started` };
    return idempotent
      ? { retryable: true, reason: `${what} while the command ran; the request is idempotent` }
      : { retryable: false, reason: `${what} while the command ran; the request is not idempotent` };
  };

/** Like `beforeStart`, but a command already handed to the transport counts as started (see the module comment). */
const lostAfterRequest =
  (what: string): Rule =>
  (context) =>
    context.requested === true && !context.started
      ? context.idempotent
        ? { retryable: true, reason: `${what} after the command was sent; the request is idempotent` }
        : { retryable: false, reason: `${what} after the command was sent, so it may have run; the request is not idempotent` }
      : beforeStart(what)(context);

const RULES: Readonly<Record<ErrorCode, Rule>> = {
  CONNECT: beforeStart("the connection failed"),
  CONNECTION_LOST: lostAfterRequest("the connection was lost"),
  CHANNEL: beforeStart("the channel could not be opened"),
  POOL_TIMEOUT: beforeStart("no pooled connection was free in time"),
  TIMEOUT: never("the operation ran out of its time budget"),
  AUTHENTICATION: never("authentication failed; repeating it cannot succeed and may lock the account"),
  HOST_KEY: never("the host key did not verify"),
  VALIDATION: never("the request is invalid"),
  CONFIG: never("the configuration is invalid"),
  SUDO: never("sudo refused"),
  ABORTED: never("the caller aborted"),
  CIRCUIT_OPEN: never("the host's circuit breaker is open"),
  COMMAND_FAILED: never("the command ran and exited non-zero"),
  POOL_CLOSED: never("the pool is closed"),
  TRANSFER: never("the transfer failed"),
  RETRIES_EXHAUSTED: never("retries were already exhausted"),
  UNSUPPORTED_HOST: never("the host cannot do this; it would fail the same way again"),
  OUTCOME_UNKNOWN: never("whether the operation ran is unknown; only the one who knows it is idempotent repeats it"),
};

/**
 * Decide whether an attempt that failed with `error` may be retried.
 * @example
 * classifyError(new ConnectError("refused"), { started: false, idempotent: false }).retryable === true
 * classifyError(new ConnectError("lost", { lost: true }), { started: true, idempotent: false }).retryable === false
 */
export function classifyError(error: unknown, context: ClassifyContext): Classification {
  if (!TunnelError.is(error)) return { retryable: false, reason: "not a tunnel error (unclassified)" };
  const rule = RULES[error.code] as Rule | undefined;
  if (!rule) return { retryable: false, reason: `unknown error code ${error.code}` };
  const verdict = rule(context);
  if (verdict.retryable && !error.retryable) {
    return { retryable: false, reason: `${verdict.reason}, but the error is marked not retryable` };
  }
  return verdict;
}

/**
 * The connection itself failed or is gone (`CONNECT`, `CONNECTION_LOST`): a lease that saw it must be
 * destroyed, never released, and the connection never handed out again.
 */
export function isConnectionError(error: unknown): boolean {
  return TunnelError.is(error) && (error.code === "CONNECT" || error.code === "CONNECTION_LOST");
}
