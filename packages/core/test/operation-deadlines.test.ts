import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { OperationDeadlines } from "../src/operation-deadlines.js";

describe("OperationDeadlines", () => {
  beforeEach(() => vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout", "Date"], now: 1_000_000 }));
  afterEach(() => vi.useRealTimers());

  it("expires each operation at its own deadline, earliest first, on one timer", () => {
    const deadlines = new OperationDeadlines();
    const expired: string[] = [];
    deadlines.add(Date.now() + 300, () => expired.push("late"));
    deadlines.add(Date.now() + 100, () => expired.push("early"));
    deadlines.add(Date.now() + 200, () => expired.push("middle"));
    expect(vi.getTimerCount()).toBe(1);
    vi.advanceTimersByTime(99);
    expect(expired).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(expired).toEqual(["early"]);
    vi.advanceTimersByTime(100);
    expect(expired).toEqual(["early", "middle"]);
    vi.advanceTimersByTime(100);
    expect(expired).toEqual(["early", "middle", "late"]);
    expect(vi.getTimerCount()).toBe(0);
  });

  it("never expires an operation that ended in time, and still expires the others", () => {
    const deadlines = new OperationDeadlines();
    const expired: string[] = [];
    const done = deadlines.add(Date.now() + 100, () => expired.push("first"));
    deadlines.add(Date.now() + 150, () => expired.push("second"));
    done();
    vi.advanceTimersByTime(100);
    expect(expired).toEqual([]);
    vi.advanceTimersByTime(50);
    expect(expired).toEqual(["second"]);
  });

  it("keeps one timer for a run of operations that each end in time", () => {
    const deadlines = new OperationDeadlines();
    const expire = vi.fn();
    for (let index = 0; index < 5; index++) {
      const done = deadlines.add(Date.now() + 1000, expire);
      vi.advanceTimersByTime(10);
      done();
    }
    expect(vi.getTimerCount()).toBe(1);
    vi.advanceTimersByTime(2000);
    expect(expire).not.toHaveBeenCalled();
    expect(vi.getTimerCount()).toBe(0);
  });
});
