import { describe, expect, it } from "vitest";
import { housekeepingBackoff, RECHECK_AFTER_LOSS_MS, removeAfterLoss } from "../src/housekeeping.js";

describe("housekeeping policy", () => {
  it("waits 100 ms more after each failed try, at most a second", () => {
    expect([1, 2, 5, 10, 11, 50].map(housekeepingBackoff)).toEqual([100, 200, 500, 1_000, 1_000, 1_000]);
  });

  it("after a loss stops leftovers first, removes, and removes once more a moment later", async () => {
    const calls: Array<readonly [string, number]> = [];
    const started = performance.now();
    const at = () => performance.now() - started;
    const removed = await removeAfterLoss(
      async () => void calls.push(["stop", at()]),
      async () => (calls.push(["remove", at()]), true),
    );
    expect(removed).toBe(true);
    expect(calls.map(([name]) => name)).toEqual(["stop", "remove", "remove"]);
    // The second removal comes no sooner than the recheck delay after the first (a lower bound only).
    expect((calls[2]?.[1] ?? 0) - (calls[1]?.[1] ?? 0)).toBeGreaterThanOrEqual(RECHECK_AFTER_LOSS_MS - 5);
  });

  it("does not remove twice when the first removal failed, and reports the failure", async () => {
    const calls: string[] = [];
    const removed = await removeAfterLoss(
      async () => void calls.push("stop"),
      async () => (calls.push("remove"), false),
    );
    expect(removed).toBe(false);
    expect(calls).toEqual(["stop", "remove"]);
  });

  it("reports a failed second removal", async () => {
    let removals = 0;
    expect(
      await removeAfterLoss(
        async () => undefined,
        async () => ++removals === 1,
      ),
    ).toBe(false);
    expect(removals).toBe(2);
  });
});
