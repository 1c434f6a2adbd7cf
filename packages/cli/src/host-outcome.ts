/** One host's line in the summary and the JSON document: from its result, its error, or its skip. */
import { RetriesExhaustedError, TunnelError, retryAttempts } from "@tunnel-sh/core";
import type { FleetHostResult, Redactor, Result } from "@tunnel-sh/core";
import { describeTarget, type HostEntry } from "./hosts.js";
import type { HostOutcome } from "./output.js";

export function errorOutcome(host: HostEntry, error: unknown, durationMs: number, redactor: Redactor): HostOutcome {
  const tunnel = TunnelError.is(error);
  const message = redactor.redact(error instanceof Error ? error.message : String(error));
  return failedOutcome(host, Math.round(durationMs), retryAttempts(error) ?? (RetriesExhaustedError.is(error) ? error.attempts : 1), {
    code: tunnel ? error.code : "ERROR",
    message,
    phase: tunnel ? error.phase : undefined,
    retryable: tunnel ? error.retryable : false,
  });
}

export function skippedOutcome(host: HostEntry, reason: FleetHostResult["skipReason"]): HostOutcome {
  // An interrupted run reports ABORTED for every host it stopped, started or not; SKIPPED is the budget's.
  return failedOutcome(host, 0, 0, {
    code: reason === "aborted" ? "ABORTED" : "SKIPPED",
    message: reason === "aborted" ? "not started: interrupted" : "not started: the failure budget (--max-fail) was spent",
    phase: undefined,
    retryable: false,
  });
}

/** A host without a result: no exit code, no signal, and the error that says why. */
function failedOutcome(host: HostEntry, durationMs: number, attempts: number, error: NonNullable<HostOutcome["error"]>): HostOutcome {
  return { name: host.name, target: describeTarget(host.target), ok: false, exitCode: null, signal: null, durationMs, attempts, error };
}

export function resultOutcome(host: HostEntry, result: Result): HostOutcome {
  return {
    name: host.name,
    target: describeTarget(host.target),
    ok: result.exitCode === 0,
    exitCode: result.exitCode,
    signal: result.signal,
    durationMs: Math.round(result.durationMs),
    attempts: result.attempts,
    stdout: result.stdout,
    stderr: result.stderr,
    truncated: result.truncated,
  };
}
