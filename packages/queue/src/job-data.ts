/**
 * What travels through Redis: a job's data (the request, never a secret), its progress (live events), and its outcome.
 * Everything here is plain JSON.
 */
import type { Result, TransferResult } from "@tunnel-sh/core";
import type { SerializedError } from "./serialize-error.js";

/** The version of the job data layout; a worker refuses data of another version. */
export const JOB_DATA_VERSION = 1;

export type OperationKind = "command" | "script" | "transfer";

/** A trace context carrier, e.g. W3C `{ traceparent, tracestate }`. */
export type TraceCarrier = Readonly<Record<string, string>>;

export interface QueueJobData {
  readonly version: typeof JOB_DATA_VERSION;
  readonly kind: OperationKind;
  /** The request as the Executor takes it, without signal, callbacks and secrets. */
  readonly request: Readonly<Record<string, unknown>>;
  /** The name of the secret the worker resolves into the sudo password. The secret itself never enters Redis. */
  readonly sudoSecret?: string;
  /** The request may run twice: only then is a job whose worker died run again. */
  readonly idempotent: boolean;
  /** The producer's trace context. */
  readonly trace?: TraceCarrier;
}

/** One live event of a running job. */
export type QueueJobEvent =
  | { readonly type: "started" }
  | { readonly type: "output"; readonly stream: "stdout" | "stderr"; readonly text: string }
  | { readonly type: "progress"; readonly bytes: number; readonly total: number | null; readonly rate: number };

/** A job's progress: a batch of events, numbered so a producer never applies one twice. */
export interface QueueJobProgress {
  readonly seq: number;
  readonly events: readonly QueueJobEvent[];
}

/** A job's return value: the operation's result, or the typed error it failed with. */
export type QueueJobOutcome =
  | { readonly ok: true; readonly result: Result }
  | { readonly ok: true; readonly transfer: TransferResult }
  | { readonly ok: false; readonly error: SerializedError };

/** The reason a job failed because its outcome cannot be known starts with this. */
export const OUTCOME_UNKNOWN_PREFIX = "OUTCOME_UNKNOWN: ";

export function isJobProgress(value: unknown): value is QueueJobProgress {
  return (
    typeof value === "object" && value !== null && typeof (value as QueueJobProgress).seq === "number" && Array.isArray((value as QueueJobProgress).events)
  );
}
