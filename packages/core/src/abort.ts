/**
 * Abort and deadline handling, in one place: the error an aborted signal stands for, an abortable sleep, racing a
 * promise against a signal, and the signal of an operation with a deadline. (After the Vercel AI SDK's
 * provider-utils `delay.ts` and `merge-abort-signals.ts`.)
 */
import { AbortError, TunnelError } from "./errors.js";

/** The error to throw when `signal` aborted: its reason when that is a tunnel error (e.g. a timeout), else `AbortError`. */
export function abortErrorFrom(signal: AbortSignal): TunnelError {
  const reason: unknown = signal.reason;
  if (TunnelError.is(reason)) return reason;
  return new AbortError(undefined, { cause: reason });
}

/** An abortable sleep on the global `setTimeout` (so fake timers drive it). Rejects via `abortErrorFrom`. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    if (signal?.aborted) {
      reject(abortErrorFrom(signal));
      return;
    }
    const onAbort = () => {
      clearTimeout(timer);
      reject(abortErrorFrom(signal as AbortSignal));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/**
 * Settle with `promise`, or reject with `toError(signal)` as soon as `signal` aborts — at once when it already has
 * (the promise itself runs on). No signal: `promise` itself.
 */
export function raceAbort<T>(promise: Promise<T>, signal: AbortSignal | undefined, toError: (signal: AbortSignal) => unknown = abortErrorFrom): Promise<T> {
  if (!signal) return promise;
  if (signal.aborted) return Promise.reject(toError(signal));
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(toError(signal));
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener("abort", onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener("abort", onAbort);
        reject(error);
      },
    );
  });
}

/** The signal of one operation: it aborts when the caller's signal does, or when the time is up. */
export interface DeadlineSignal {
  readonly signal: AbortSignal;
  /** Epoch milliseconds (as `Date.now()`) at which the time is up. */
  readonly deadline: number;
  /**
   * Stop listening to the caller's signal and clear the timer. MUST be called once the operation ended. (The timer
   * does not hold the event loop, so a process that forgets this still exits.)
   */
  dispose(): void;
}

/**
 * A signal that aborts with `abortReason()` when `signal` aborts (at once when it already has), or with
 * `timeoutReason()` after `timeoutMs`, whichever comes first.
 * @example
 * const stop = deadlineSignal({ signal, timeoutMs: 30_000, abortReason: () => new AbortError(), timeoutReason: () => new TimeoutError("…") });
 * try { await work(stop.signal); } finally { stop.dispose(); }
 */
export function deadlineSignal(options: {
  readonly signal?: AbortSignal | undefined;
  readonly timeoutMs: number;
  readonly abortReason: () => unknown;
  readonly timeoutReason: () => unknown;
}): DeadlineSignal {
  const controller = new AbortController();
  const onAbort = () => controller.abort(options.abortReason());
  options.signal?.addEventListener("abort", onAbort, { once: true });
  if (options.signal?.aborted) onAbort();
  const timer = setTimeout(() => controller.abort(options.timeoutReason()), options.timeoutMs);
  // The deadline bounds the operation, not the process: a dispose that was forgotten must not keep it alive.
  timer.unref();
  return {
    signal: controller.signal,
    deadline: Date.now() + options.timeoutMs,
    dispose: () => {
      clearTimeout(timer);
      options.signal?.removeEventListener("abort", onAbort);
    },
  };
}
