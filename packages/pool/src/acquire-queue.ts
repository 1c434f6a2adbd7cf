import { AbortError } from "@tunnel-sh/core";
import type { Lease, Span, Target } from "@tunnel-sh/core";
import { raceAbort } from "@tunnel-sh/core/internal";
import type { KeyState, Timer } from "./pooled-connection.js";

/** One waiting `acquire`: in the pool's queue until it is granted a lease or fails. */
export interface Waiter {
  readonly keyState: KeyState;
  readonly enqueuedAt: number;
  /** Lend only a connection opened or pinged for this dispatch (`AcquireOptions.verify`). */
  readonly verify: boolean;
  readonly span: Span;
  readonly resolve: (lease: Lease) => void;
  readonly reject: (error: unknown) => void;
  /** The connect this waiter waits for; it fails with that connect. */
  pending: PendingConnect | undefined;
  connected: boolean;
  timer: Timer | undefined;
  stopListening: (() => void) | undefined;
}

/** One connect in flight, shared by up to `capacity` waiters. */
export interface PendingConnect {
  readonly keyState: KeyState;
  readonly controller: AbortController;
  readonly waiters: Set<Waiter>;
  /** Waiters one connect is expected to serve; the connection's real budget is known only once it is open. */
  readonly capacity: number;
  /** Resolves (never rejects) once the connect settled: with the error when it failed. */
  settled: Promise<unknown>;
}

/** `waiter` now waits for `pending` and fails with it. */
export function attach(waiter: Waiter, pending: PendingConnect): void {
  waiter.pending = pending;
  waiter.connected = true;
  pending.waiters.add(waiter);
}

/** The error an aborted acquire (or warm-up) rejects with. */
export function abortError(signal: AbortSignal, target: Target): AbortError {
  return new AbortError("the acquire was aborted", { target, cause: signal.reason, phase: "connect" });
}

/** `promise`, or the acquire's `AbortError` as soon as `signal` aborts. */
export function raceAcquireAbort<T>(promise: Promise<T>, signal: AbortSignal | undefined, target: Target): Promise<T> {
  return raceAbort(promise, signal, (aborted) => abortError(aborted, target));
}
