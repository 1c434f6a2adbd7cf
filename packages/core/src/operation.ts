/**
 * The frame every executor operation runs in: its span (redacted), its deadline and cancellation, a
 * `maxConcurrent` place, the host's circuit breaker, and retries with the executor's strategy.
 */
import { setMaxListeners } from "node:events";
import type { CircuitBreakerRegistry } from "./breaker.js";
import { classifyError } from "./classify.js";
import type { ExecutorConfig } from "./config.js";
import { AbortError, CommandFailedError, TimeoutError, TunnelError } from "./errors.js";
import type { Limiter } from "./limiter.js";
import type { OperationDeadlines } from "./operation-deadlines.js";
import type { Redactor } from "./redact.js";
import { executeWithRetry, retryAttempts } from "./retry.js";
import type { RetryStats } from "./retry.js";
import type { RunResult } from "./run.js";
import { copyTarget, targetKey } from "./target.js";
import { recording, startSpan, tracesNothing } from "./traced-span.js";
import type { Attributes, Span, Tracer } from "./tracer.js";
import type { Result, SudoOptions, Target } from "./types.js";

/** One running operation, as its attempts see it. */
export interface Operation {
  readonly target: Target;
  /** `targetKey(target)`: the key of breakers, spans and results. */
  readonly key: string;
  /** Aborts on the caller's signal and at the operation's timeout; every process, lease wait and transfer listens. */
  readonly signal: AbortSignal;
  readonly span: Span;
  /** Epoch milliseconds at which the operation's timeout fires. */
  readonly deadline: number;
}

/** What one attempt knows, shared with the retry classifier. */
export interface AttemptContext {
  started: boolean;
  /** The command was handed to a live connection: an exec request may have reached the server. */
  requested?: boolean;
  /**
   * A process of the operation started with the request's stdin stream, which it then reads: no other attempt can
   * send that input again. Kept across attempts.
   */
  inputTaken?: boolean;
}

/** What the frame takes from the executor that runs it. */
export interface OperationServices {
  readonly tracer: Tracer;
  readonly redactor: Redactor;
  readonly limiter: Limiter;
  readonly breakers: CircuitBreakerRegistry;
  readonly retryStats: RetryStats;
  readonly deadlines: OperationDeadlines;
}

/** One operation to run in the frame. */
export interface OperationSpec<R, V> {
  /** The span's name, e.g. `tunnel.command`. */
  readonly name: string;
  readonly request: Target & { readonly signal?: AbortSignal };
  readonly timeout: number;
  /** The span's own attributes; called only when the tracer records anything. */
  readonly attributes: () => Attributes;
  /** Many processes, lease waits or transfers listen on the operation's signal at once (a tree transfer). */
  readonly manyListeners?: boolean;
  readonly idempotent: boolean;
  /**
   * False for a request whose input can be sent once only (streamed stdin): once a process started reading it
   * (`AttemptContext.inputTaken`), no other attempt runs. Before that (a failed connect, a refused channel) the stream
   * is unread and the request is retried as any other.
   */
  readonly replayable: boolean;
  readonly sudo: boolean | SudoOptions | undefined;
  readonly attempt: (operation: Operation, context: AttemptContext, attempt: number) => Promise<V>;
  /** Turns the last attempt's value into the operation's result; a throw here fails the operation. */
  readonly complete: (value: V, attempts: number, durationMs: number, operation: Operation) => R;
}

export async function runOperation<R, V>(services: OperationServices, config: ExecutorConfig, spec: OperationSpec<R, V>): Promise<R> {
  const target = copyTarget(spec.request);
  const key = targetKey(target);
  const password = typeof spec.sudo === "object" ? spec.sudo.password : undefined;
  const redactor = password !== undefined ? services.redactor.child([password]) : services.redactor;
  const span = startSpan(services.tracer, spec.name, {
    attributes: tracesNothing(services.tracer)
      ? undefined
      : {
          "server.address": target.host,
          "server.port": target.port,
          "tunnel.user": target.user,
          "tunnel.connection.key": key,
          ...spec.attributes(),
        },
    redactor,
  });
  const startedAt = performance.now();
  // The operation's signal aborts when the caller's does, or at the deadline (on the executor's one deadline timer).
  const stop = new AbortController();
  const callerSignal = spec.request.signal;
  const onCallerAbort = (): void => stop.abort(new AbortError(undefined, { target }));
  callerSignal?.addEventListener("abort", onCallerAbort, { once: true });
  if (callerSignal?.aborted) onCallerAbort();
  const deadline = Date.now() + spec.timeout;
  const deadlineDone = services.deadlines.add(deadline, () =>
    stop.abort(new TimeoutError(`the operation timed out after ${spec.timeout} ms`, { timeoutMs: spec.timeout, target })),
  );
  // Every remote process, lease wait and transfer of the operation listens on this signal; a tree transfer has many.
  if (spec.manyListeners === true) setMaxListeners(0, stop.signal);
  const operation: Operation = { target, key, signal: stop.signal, span, deadline };
  const context: AttemptContext = { started: false };
  let attempts = 0;
  try {
    await services.limiter.acquire(stop.signal);
    try {
      const permit = services.breakers.acquire(key, target);
      try {
        const outcome = await executeWithRetry(
          (attempt) => {
            attempts = attempt;
            context.started = false;
            context.requested = false;
            return spec.attempt(operation, context, attempt);
          },
          {
            strategy: config.retryStrategy(),
            signal: stop.signal,
            deadline: operation.deadline,
            // Every failed connect attempt counts for the breaker; once it opened, the operation stops retrying.
            shouldRetry: (error) =>
              permit.attemptFailed(error) &&
              (spec.replayable || context.inputTaken !== true) &&
              classifyError(error, { started: context.started, requested: context.requested === true, idempotent: spec.idempotent }).retryable,
            onRetry: ({ attempt, delayMs, error }) =>
              span.addEvent("tunnel.retry", {
                "tunnel.attempt": attempt + 1,
                "tunnel.retry.delay": delayMs / 1000,
                "error.type": TunnelError.is(error) ? error.code : "Error",
              }),
            stats: services.retryStats,
            target,
          },
        );
        permit.success();
        return spec.complete(outcome.value, outcome.attempts, performance.now() - startedAt, operation);
      } catch (error) {
        permit.settle(error);
        throw error;
      }
    } finally {
      services.limiter.release();
    }
  } catch (caught) {
    const error = stop.signal.aborted && !(caught instanceof CommandFailedError) ? finalStopError(stop.signal, caught) : caught;
    span.setAttributes({ "tunnel.attempts": retryAttempts(caught) ?? Math.max(attempts, 1) });
    span.recordError(error);
    throw redactor.redactErrorObject(error);
  } finally {
    deadlineDone();
    callerSignal?.removeEventListener("abort", onCallerAbort);
    span.end();
  }
}

/**
 * The `complete` of a command or a script: the run's `Result`, recorded on the span; with `check`, a non-zero exit
 * throws `CommandFailedError`.
 */
export function commandResult(check: boolean): (run: RunResult, attempts: number, durationMs: number, operation: Operation) => Result {
  return (run, attempts, durationMs, operation) => {
    const result: Result = {
      exitCode: run.exitCode,
      signal: run.signal,
      stdout: run.stdout,
      stderr: run.stderr,
      durationMs,
      attempts,
      host: operation.key,
      truncated: run.truncated,
    };
    if (recording(operation.span)) {
      operation.span.setAttributes({
        "process.exit.code": result.exitCode ?? undefined,
        "tunnel.exit.signal": result.signal ?? undefined,
        "tunnel.attempts": result.attempts,
        "tunnel.output.truncated": result.truncated,
      });
      operation.span.addEvent("tunnel.command.completed", {
        "process.exit.code": result.exitCode ?? undefined,
        "tunnel.exit.signal": result.signal ?? undefined,
      });
    }
    if (check && result.exitCode !== 0) throw new CommandFailedError(result, { target: operation.target });
    return result;
  };
}

/** After the operation's own stop fired, the caller sees why: the timeout or the abort, not a side effect of it. */
function finalStopError(signal: AbortSignal, caught: unknown): unknown {
  const reason: unknown = signal.reason;
  if (TunnelError.is(reason)) {
    if (TunnelError.is(caught) && (caught.code === reason.code || caught.code === "SUDO")) return caught;
    return reason;
  }
  return caught;
}
