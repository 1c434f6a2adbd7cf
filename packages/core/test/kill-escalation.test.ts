import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { escalateKill, type EscalationSignal } from "../src/kill-escalation.js";

function process() {
  let end!: () => void;
  const ended = new Promise<void>((resolve) => (end = resolve));
  const sent: EscalationSignal[] = [];
  return { ended, end, sent, send: (signal: EscalationSignal) => void sent.push(signal) };
}

describe("escalateKill", () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it("sends TERM only when the process ends within the grace period", async () => {
    const target = process();
    const abandon = vi.fn();
    const outcome = escalateKill({ send: target.send, ended: target.ended, graceMs: 1000, abandon });
    await vi.advanceTimersByTimeAsync(999);
    expect(target.sent).toEqual(["TERM"]);
    target.end();
    await expect(outcome).resolves.toBe("ended");
    await vi.advanceTimersByTimeAsync(5000);
    expect(target.sent).toEqual(["TERM"]);
    expect(abandon).not.toHaveBeenCalled();
  });

  it("sends KILL after the grace period, and abandons the process that outlives it too", async () => {
    const target = process();
    const abandon = vi.fn();
    const outcome = escalateKill({ send: target.send, ended: target.ended, graceMs: 1000, abandon });
    await vi.advanceTimersByTimeAsync(1000);
    expect(target.sent).toEqual(["TERM", "KILL"]);
    expect(abandon).not.toHaveBeenCalled();
    await vi.advanceTimersByTimeAsync(1000);
    await expect(outcome).resolves.toBe("abandoned");
    expect(abandon).toHaveBeenCalledTimes(1);
  });

  it("counts a process that failed (a rejected `ended`) as ended", async () => {
    const ended = Promise.reject(new Error("lost"));
    const sent: EscalationSignal[] = [];
    await expect(escalateKill({ send: (signal) => void sent.push(signal), ended, graceMs: 1000 })).resolves.toBe("ended");
    expect(sent.length).toBeLessThanOrEqual(1);
  });

  it("waits for an asynchronous send before the grace period starts, and goes on when a send fails", async () => {
    const target = process();
    let finishTerm!: () => void;
    const sent: EscalationSignal[] = [];
    const send = (signal: EscalationSignal): Promise<void> => {
      sent.push(signal);
      if (signal === "TERM") return new Promise<void>((resolve) => (finishTerm = resolve));
      return Promise.reject(new Error("no session"));
    };
    const outcome = escalateKill({ send, ended: target.ended, graceMs: 1000 });
    await vi.advanceTimersByTimeAsync(3000);
    expect(sent).toEqual(["TERM"]);
    finishTerm();
    await vi.advanceTimersByTimeAsync(1000);
    expect(sent).toEqual(["TERM", "KILL"]);
    await vi.advanceTimersByTimeAsync(1000);
    await expect(outcome).resolves.toBe("abandoned");
  });
});
