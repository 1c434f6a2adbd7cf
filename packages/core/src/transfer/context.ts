/**
 * What a transfer runs with: its channel (a lease on the host, moved by the pool's channel budget when the server
 * refuses a step's channel), more channels for parallel work, and the executor's bounds.
 */
import type { Connection } from "../transport.js";
import type { Target } from "../types.js";

export interface TransferOutcome {
  readonly bytes: number;
  readonly files: number;
  readonly skipped: number;
  readonly verified: boolean;
}

/** A channel on the host, for steps that run one after another (core's `ChannelLease` is one). */
export interface TransferChannel {
  /** The connection the next step opens its channel on. */
  readonly connection: Connection;
  /**
   * Run one step that opens a channel. A channel the server refused is handed back to the pool's budget and the step
   * runs again on another lease (`channel-budget.ts`); `signal` replaces the operation's for housekeeping.
   */
  run<T>(step: (connection: Connection) => Promise<T>, options?: { readonly signal?: AbortSignal }): Promise<T>;
}

/** A channel borrowed from the pool; `done` gives it back (settled by `error` when there was one). */
export interface BorrowedChannel {
  readonly channel: TransferChannel;
  done(error?: unknown): void;
}

export interface TransferContext {
  readonly channel: TransferChannel;
  readonly target: Target;
  readonly signal: AbortSignal;
  /** Files moved at once in a directory transfer. */
  readonly parallelism: number;
  /**
   * Another channel, for a parallel file of a directory transfer or a remote hash beside a download (a channel must
   * not be shared beyond the pool's budget). `stop` ends the wait for it early. `budget` replaces the operation's
   * signal, for housekeeping: the lease is taken, and its refusals moved, after the operation was cancelled too.
   */
  readonly borrow?: (stop?: AbortSignal, budget?: AbortSignal) => Promise<BorrowedChannel>;
  /** Bound for sudo prompts (chown). */
  readonly sudoTimeout: number;
  /** Budget in ms for removing temp files after a failure (the executor's `cleanupTimeout`). */
  readonly cleanupTimeout: number;
  /** Reports a verification retry (for traces). */
  readonly onVerifyMismatch?: (path: string) => void;
}

/** The context with its steps on `channel` instead (a parallel worker's, a borrowed one's). */
export function onChannel(context: TransferContext, channel: TransferChannel): TransferContext {
  return { ...context, channel };
}
