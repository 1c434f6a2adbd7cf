import fc from "fast-check";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { AbortError, AuthenticationError, ConnectError, RetriesExhaustedError, TimeoutError } from "../src/errors.js";
import type { RetryInfo, RetryStrategy } from "../src/retry.js";
import { sleep } from "../src/abort.js";
import { RetryStats, computeBackoff, executeWithRetry, retryAttempts } from "../src/retry.js";

const strategy = (extra: Partial<RetryStrategy> = {}): RetryStrategy => ({
  maxAttempts: 4,
  baseDelay: 100,
  maxDelay: 10_000,
  multiplier: 2,
  jitter: 0,
  ...extra,
});

const refused = (n = 0) => new ConnectError(`connect ECONNREFUSED (${n})`, { target: { host: "h" } });

/** An operation that fails with `errors[i]` on attempt i+1 and then returns "ok". */
function scripted(errors: unknown[]) {
  const calls: number[] = [];
  const operation = vi.fn(async (attempt: number) => {
    calls.push(attempt);
    const error = errors[attempt - 1];
    if (error !== undefined) throw error;
    return "ok";
  });
  return { operation, calls };
}

/** The promise's rejection, caught now so it never counts as unhandled while fake timers run. */
function settle<T>(promise: Promise<T>): Promise<{ value?: T; error?: unknown }> {
  return promise.then(
    (value) => ({ value }),
    (error: unknown) => ({ error }),
  );
}

describe("computeBackoff", () => {
  it("grows by the multiplier from the base delay", () => {
    const s = strategy({ baseDelay: 100, multiplier: 3, maxDelay: 1e9 });
    expect([1, 2, 3, 4].map((attempt) => computeBackoff(attempt, s))).toEqual([100, 300, 900, 2700]);
  });

  it("caps at maxDelay, also for huge attempt numbers", () => {
    const s = strategy({ baseDelay: 100, multiplier: 2, maxDelay: 1000 });
    expect(computeBackoff(4, s)).toBe(800);
    expect(computeBackoff(5, s)).toBe(1000);
    expect(computeBackoff(5000, s)).toBe(1000);
  });

  it("takes jitter off the top: delay * (1 - jitter * random)", () => {
    const s = strategy({ baseDelay: 1000, jitter: 0.5 });
    expect(computeBackoff(1, s, () => 0)).toBe(1000);
    expect(computeBackoff(1, s, () => 0.5)).toBe(750);
    expect(computeBackoff(1, s, () => 0.999999)).toBe(500);
  });

  it("keeps every jittered delay within [capped * (1 - jitter), capped] and never above maxDelay", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 60 }),
        fc.integer({ min: 0, max: 5000 }),
        fc.integer({ min: 0, max: 60_000 }),
        fc.double({ min: 1, max: 10, noNaN: true }),
        fc.double({ min: 0, max: 1, noNaN: true }),
        fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
        (attempt, baseDelay, maxDelay, multiplier, jitter, r) => {
          const s = { maxAttempts: 10, baseDelay, maxDelay, multiplier, jitter };
          const capped = Math.min(maxDelay, baseDelay * multiplier ** (attempt - 1));
          const delay = computeBackoff(attempt, s, () => r);
          expect(Number.isInteger(delay)).toBe(true);
          expect(delay).toBeGreaterThanOrEqual(Math.floor(capped * (1 - jitter)));
          expect(delay).toBeLessThanOrEqual(Math.ceil(capped));
          expect(delay).toBeLessThanOrEqual(maxDelay);
        },
      ),
      { numRuns: 500 },
    );
  });
});

describe("executeWithRetry", () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it("returns the value and 1 attempt when the first attempt succeeds", async () => {
    const { operation } = scripted([]);
    await expect(executeWithRetry(operation, { strategy: strategy() })).resolves.toEqual({ value: "ok", attempts: 1 });
    expect(operation).toHaveBeenCalledTimes(1);
  });

  it("retries retryable errors after growing backoff sleeps and reports the attempts", async () => {
    const { operation, calls } = scripted([refused(1), refused(2), refused(3)]);
    const retries: RetryInfo[] = [];
    const result = settle(executeWithRetry(operation, { strategy: strategy(), onRetry: (info) => retries.push(info) }));

    await vi.advanceTimersByTimeAsync(0);
    expect(calls).toEqual([1]);
    await vi.advanceTimersByTimeAsync(99);
    expect(calls).toEqual([1]);
    await vi.advanceTimersByTimeAsync(1);
    expect(calls).toEqual([1, 2]);
    await vi.advanceTimersByTimeAsync(199);
    expect(calls).toEqual([1, 2]);
    await vi.advanceTimersByTimeAsync(1);
    expect(calls).toEqual([1, 2, 3]);
    await vi.advanceTimersByTimeAsync(400);
    expect(calls).toEqual([1, 2, 3, 4]);

    expect(await result).toEqual({ value: { value: "ok", attempts: 4 } });
    expect(retries.map(({ attempt, delayMs }) => [attempt, delayMs])).toEqual([
      [1, 100],
      [2, 200],
      [3, 400],
    ]);
    expect((retries[0]?.error as Error).message).toContain("(1)");
  });

  it("throws RetriesExhaustedError keeping every attempt's error when all attempts fail", async () => {
    const errors = [refused(1), refused(2), refused(3)];
    const { operation } = scripted(errors);
    const result = settle(executeWithRetry(operation, { strategy: strategy({ maxAttempts: 3 }), target: { host: "h" } }));
    await vi.runAllTimersAsync();
    const { error } = await result;
    expect(error).toBeInstanceOf(RetriesExhaustedError);
    const exhausted = error as RetriesExhaustedError;
    expect(exhausted.errors).toEqual(errors);
    expect(exhausted.attempts).toBe(3);
    expect(exhausted.cause).toBe(errors[2]);
    expect(exhausted.phase).toBe("connect");
    expect(exhausted.target).toEqual({ host: "h" });
    expect(retryAttempts(exhausted)).toBe(3);
    expect(exhausted.reason).toBe("attempts");
    expect(operation).toHaveBeenCalledTimes(3);
  });

  it("rethrows the original error when only one attempt is allowed", async () => {
    const error = refused();
    const { operation } = scripted([error]);
    const { error: thrown } = await settle(executeWithRetry(operation, { strategy: strategy({ maxAttempts: 1 }) }));
    expect(thrown).toBe(error);
    expect(retryAttempts(thrown)).toBe(1);
  });

  it("does not retry a non-retryable error and rethrows it as is", async () => {
    const auth = new AuthenticationError("All configured authentication methods failed");
    const { operation } = scripted([auth]);
    const { error } = await settle(executeWithRetry(operation, { strategy: strategy() }));
    expect(error).toBe(auth);
    expect(operation).toHaveBeenCalledTimes(1);
    expect(retryAttempts(error)).toBe(1);
  });

  it("stops at a non-retryable error after earlier retries and says how many attempts were made", async () => {
    const auth = new AuthenticationError("denied");
    const { operation } = scripted([refused(), auth]);
    const result = settle(executeWithRetry(operation, { strategy: strategy() }));
    await vi.runAllTimersAsync();
    const { error } = await result;
    expect(error).toBe(auth);
    expect(retryAttempts(error)).toBe(2);
  });

  it("does not retry unknown errors by default, and follows shouldRetry when given", async () => {
    const plain = new Error("boom");
    const first = scripted([plain]);
    expect((await settle(executeWithRetry(first.operation, { strategy: strategy() }))).error).toBe(plain);
    expect(first.operation).toHaveBeenCalledTimes(1);

    const second = scripted([plain, plain]);
    const seen: Array<[unknown, number]> = [];
    const result = settle(
      executeWithRetry(second.operation, {
        strategy: strategy(),
        shouldRetry: (error, attempt) => {
          seen.push([error, attempt]);
          return true;
        },
      }),
    );
    await vi.runAllTimersAsync();
    expect(await result).toEqual({ value: { value: "ok", attempts: 3 } });
    expect(seen).toEqual([
      [plain, 1],
      [plain, 2],
    ]);
  });

  it("never retries an abort, even when shouldRetry says yes", async () => {
    const aborted = new AbortError();
    const domAbort = Object.assign(new Error("The operation was aborted"), { name: "AbortError" });
    for (const error of [aborted, domAbort]) {
      const { operation } = scripted([error]);
      const { error: thrown } = await settle(executeWithRetry(operation, { strategy: strategy(), shouldRetry: () => true }));
      expect(thrown).toBe(error);
      expect(operation).toHaveBeenCalledTimes(1);
    }
  });

  it("does not retry once the signal has aborted, whatever the error", async () => {
    const controller = new AbortController();
    const error = refused();
    const operation = vi.fn(async () => {
      controller.abort();
      throw error;
    });
    const { error: thrown } = await settle(executeWithRetry(operation, { strategy: strategy(), signal: controller.signal }));
    expect(thrown).toBe(error);
    expect(operation).toHaveBeenCalledTimes(1);
  });

  it("does not start at all with an already-aborted signal", async () => {
    const { operation } = scripted([]);
    const { error } = await settle(executeWithRetry(operation, { strategy: strategy(), signal: AbortSignal.abort() }));
    expect(error).toBeInstanceOf(AbortError);
    expect(operation).not.toHaveBeenCalled();
    expect(retryAttempts(error)).toBe(0);
  });

  it("rejects with AbortError at once when aborted during the backoff sleep", async () => {
    const controller = new AbortController();
    const { operation } = scripted([refused(), refused()]);
    const result = settle(executeWithRetry(operation, { strategy: strategy({ baseDelay: 10_000 }), signal: controller.signal }));
    await vi.advanceTimersByTimeAsync(1000);
    controller.abort(new Error("user pressed ^C"));
    const { error } = await result;
    expect(error).toBeInstanceOf(AbortError);
    expect((error as AbortError).cause).toEqual(new Error("user pressed ^C"));
    expect(retryAttempts(error)).toBe(1);
    expect(operation).toHaveBeenCalledTimes(1);
    expect(vi.getTimerCount()).toBe(0);
  });

  it("rejects with the signal's reason when that is a tunnel error (a composed timeout)", async () => {
    const controller = new AbortController();
    const { operation } = scripted([refused(), refused()]);
    const result = settle(executeWithRetry(operation, { strategy: strategy(), signal: controller.signal }));
    await vi.advanceTimersByTimeAsync(10);
    const timeout = new TimeoutError("the command timed out after 5000 ms", { timeoutMs: 5000 });
    controller.abort(timeout);
    expect((await result).error).toBe(timeout);
  });

  it("stops at the deadline instead of sleeping past it, wrapping the errors so far", async () => {
    const start = Date.now();
    const { operation, calls } = scripted([refused(1), refused(2), refused(3)]);
    // Sleeps are 100 then 200 ms; the deadline allows the first, not the second.
    const result = settle(executeWithRetry(operation, { strategy: strategy(), deadline: start + 250 }));
    await vi.advanceTimersByTimeAsync(100);
    const { error } = await result;
    expect(calls).toEqual([1, 2]);
    expect(error).toBeInstanceOf(RetriesExhaustedError);
    expect((error as RetriesExhaustedError).errors).toHaveLength(2);
    expect(retryAttempts(error)).toBe(2);
    expect((error as RetriesExhaustedError).reason).toBe("deadline");
    expect(Date.now() - start).toBe(100);
  });

  it("lets a sleep end exactly at the deadline", async () => {
    const start = Date.now();
    const { operation } = scripted([refused()]);
    const result = settle(executeWithRetry(operation, { strategy: strategy(), deadline: start + 100 }));
    await vi.advanceTimersByTimeAsync(100);
    expect(await result).toEqual({ value: { value: "ok", attempts: 2 } });
  });

  it("uses the injected sleep, clock and random source", async () => {
    const slept: number[] = [];
    const { operation } = scripted([refused(), refused()]);
    const outcome = await executeWithRetry(operation, {
      strategy: strategy({ jitter: 1 }),
      sleep: async (ms) => {
        slept.push(ms);
      },
      now: () => 0,
      deadline: 10_000,
      random: () => 0.5,
    });
    expect(outcome.attempts).toBe(3);
    expect(slept).toEqual([50, 100]);
  });

  it("rethrows a failing injected sleep", async () => {
    const broken = new Error("sleep broke");
    const { operation } = scripted([refused()]);
    const { error } = await settle(executeWithRetry(operation, { strategy: strategy(), sleep: () => Promise.reject(broken) }));
    expect(error).toBe(broken);
  });

  it("ignores a throwing onRetry listener", async () => {
    const { operation } = scripted([refused()]);
    const result = settle(
      executeWithRetry(operation, {
        strategy: strategy(),
        onRetry: () => {
          throw new Error("listener bug");
        },
      }),
    );
    await vi.runAllTimersAsync();
    expect(await result).toEqual({ value: { value: "ok", attempts: 2 } });
  });

  it.each([
    [{ maxAttempts: 0 }, /maxAttempts/],
    [{ maxAttempts: 1.5 }, /maxAttempts/],
    [{ baseDelay: -1 }, /baseDelay/],
    [{ maxDelay: Number.POSITIVE_INFINITY }, /maxDelay/],
    [{ multiplier: 0.5 }, /multiplier/],
    [{ jitter: 1.5 }, /jitter/],
    [{ jitter: Number.NaN }, /jitter/],
  ])("refuses a bad strategy %j", async (extra, message) => {
    await expect(executeWithRetry(async () => 1, { strategy: strategy(extra) })).rejects.toThrow(message);
  });
});

describe("retryAttempts", () => {
  it("knows nothing about errors that did not come out of executeWithRetry", () => {
    expect(retryAttempts(new Error("x"))).toBeUndefined();
    expect(retryAttempts("a string")).toBeUndefined();
    expect(retryAttempts(null)).toBeUndefined();
  });
});

describe("sleep", () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it("resolves after the delay and removes its abort listener", async () => {
    const controller = new AbortController();
    let done = false;
    const sleeping = sleep(50, controller.signal).then(() => {
      done = true;
    });
    await vi.advanceTimersByTimeAsync(49);
    expect(done).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    await sleeping;
    expect(done).toBe(true);
    controller.abort();
  });

  it("rejects at once for an already-aborted signal", async () => {
    await expect(sleep(1000, AbortSignal.abort())).rejects.toBeInstanceOf(AbortError);
  });
});

describe("RetryStats", () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it("counts operations, attempts, retries, successes and failures by code", async () => {
    const stats = new RetryStats();
    const run = (errors: unknown[], maxAttempts = 3) => settle(executeWithRetry(scripted(errors).operation, { strategy: strategy({ maxAttempts }), stats }));

    const first = run([refused()]); // success on attempt 2
    await vi.runAllTimersAsync();
    await first;
    await run([new AuthenticationError("no")]); // fails at once
    const third = run([refused(), refused(), refused()]); // exhausted after 3
    await vi.runAllTimersAsync();
    await third;
    await run([new Error("bug")]);

    expect(stats.snapshot()).toEqual({
      operations: 4,
      attempts: 1 + 1 + 2 + 3,
      retries: 1 + 2,
      successes: 1,
      failures: 3,
      failuresByCode: { AUTHENTICATION: 1, RETRIES_EXHAUSTED: 1, UNKNOWN: 1 },
    });
    stats.reset();
    expect(stats.snapshot()).toEqual({ operations: 0, attempts: 0, retries: 0, successes: 0, failures: 0, failuresByCode: {} });
  });

  it("returns a snapshot that later recordings do not change", () => {
    const stats = new RetryStats();
    stats.recordFailure(new ConnectError("x"));
    const snapshot = stats.snapshot();
    stats.recordFailure(new ConnectError("y"));
    expect(snapshot.failuresByCode).toEqual({ CONNECT: 1 });
    expect(stats.snapshot().failuresByCode).toEqual({ CONNECT: 2 });
  });
});
