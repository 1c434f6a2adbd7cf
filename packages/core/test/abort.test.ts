import { spawn } from "node:child_process";
import { afterEach, beforeEach, describe, expect, it, onTestFinished, vi } from "vitest";
import { deadlineSignal, raceAbort } from "../src/abort.js";
import { AbortError, TimeoutError, hasCode } from "../src/errors.js";

describe("deadlineSignal", () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  const reasons = {
    abortReason: () => new AbortError(),
    timeoutReason: () => new TimeoutError("the operation timed out after 1000 ms", { timeoutMs: 1000 }),
  };

  it("aborts with the timeout reason when the time is up", async () => {
    const stop = deadlineSignal({ timeoutMs: 1000, ...reasons });
    expect(stop.deadline).toBe(Date.now() + 1000);
    await vi.advanceTimersByTimeAsync(999);
    expect(stop.signal.aborted).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(hasCode(stop.signal.reason, "TIMEOUT")).toBe(true);
    stop.dispose();
  });

  it("aborts with the abort reason when the caller's signal aborts, already or later", () => {
    const already = deadlineSignal({ signal: AbortSignal.abort(), timeoutMs: 1000, ...reasons });
    expect(hasCode(already.signal.reason, "ABORTED")).toBe(true);
    already.dispose();
    const controller = new AbortController();
    const later = deadlineSignal({ signal: controller.signal, timeoutMs: 1000, ...reasons });
    controller.abort();
    expect(hasCode(later.signal.reason, "ABORTED")).toBe(true);
    later.dispose();
  });

  it("after dispose holds no timer and no longer follows the caller's signal", () => {
    const controller = new AbortController();
    const stop = deadlineSignal({ signal: controller.signal, timeoutMs: 1000, ...reasons });
    stop.dispose();
    expect(vi.getTimerCount()).toBe(0);
    controller.abort();
    expect(stop.signal.aborted).toBe(false);
  });
});

describe("deadlineSignal's timer and the event loop", () => {
  const reasons = { abortReason: () => "aborted", timeoutReason: () => "timed out" };
  const activeTimers = () => process.getActiveResourcesInfo().filter((resource) => resource === "Timeout").length;

  it("holds no reference on the event loop while it runs", () => {
    const before = activeTimers();
    const stop = deadlineSignal({ timeoutMs: 3_600_000, ...reasons });
    expect(activeTimers()).toBe(before);
    expect(stop.signal.aborted).toBe(false);
    stop.dispose();
  });

  it("lets a process that never disposes it exit at once, before the deadline", async () => {
    // The function's own code (it uses globals only), in a child that creates an hour-long deadline and forgets it.
    const child = spawn(
      process.execPath,
      [
        "-e",
        `${deadlineSignal.toString()}
const stop = deadlineSignal({ timeoutMs: 3600000, abortReason: () => "aborted", timeoutReason: () => "timed out" });
process.on("exit", () => process.stdout.write(stop.signal.aborted ? "aborted" : "pending"));`,
      ],
      { stdio: ["ignore", "pipe", "inherit"] },
    );
    // Should the timer hold it after all, the test fails at its timeout: the child must not outlive it.
    onTestFinished(() => void child.kill("SIGKILL"));
    let output = "";
    child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
    const code = await new Promise<number | null>((resolve) => child.on("close", resolve));
    expect({ code, output }).toEqual({ code: 0, output: "pending" });
  });
});

describe("raceAbort", () => {
  it("settles with the promise while the signal stays quiet", async () => {
    await expect(raceAbort(Promise.resolve(7), new AbortController().signal)).resolves.toBe(7);
    await expect(raceAbort(Promise.reject(new Error("no")), new AbortController().signal)).rejects.toThrow("no");
  });

  it("rejects at once for a signal that already aborted", async () => {
    await expect(raceAbort(new Promise<never>(() => {}), AbortSignal.abort())).rejects.toMatchObject({ code: "ABORTED" });
  });

  it("rejects with the error made from the signal as soon as it aborts", async () => {
    const controller = new AbortController();
    const racing = raceAbort(new Promise<never>(() => {}), controller.signal, () => new AbortError("the acquire was aborted"));
    controller.abort();
    await expect(racing).rejects.toMatchObject({ code: "ABORTED", message: "the acquire was aborted" });
  });
});
