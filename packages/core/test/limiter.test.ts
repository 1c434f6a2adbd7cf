import { describe, expect, it } from "vitest";
import { Limiter } from "../src/limiter.js";

/** Let queued promise callbacks run. */
const tick = () => new Promise<void>((resolve) => setImmediate(resolve));

describe("Limiter", () => {
  it("lets `limit` holders in at once and the waiters in the order they came", async () => {
    const limiter = new Limiter(2);
    const order: string[] = [];
    await limiter.acquire();
    await limiter.acquire();
    const third = limiter.acquire().then(() => order.push("third"));
    const fourth = limiter.acquire().then(() => order.push("fourth"));
    await tick();
    expect({ running: limiter.running, queued: limiter.queued, order }).toEqual({ running: 2, queued: 2, order: [] });
    limiter.release();
    await third;
    limiter.release();
    await fourth;
    expect(order).toEqual(["third", "fourth"]);
    expect({ running: limiter.running, queued: limiter.queued }).toEqual({ running: 2, queued: 0 });
  });

  it("takes no place for a waiter whose signal aborts, and rejects it with the signal's reason", async () => {
    const limiter = new Limiter(1);
    await limiter.acquire();
    const controller = new AbortController();
    const waiting = limiter.acquire(controller.signal);
    const reason = new Error("stop");
    controller.abort(reason);
    await expect(waiting).rejects.toBe(reason);
    expect(limiter.queued).toBe(0);
    await expect(limiter.acquire(controller.signal)).rejects.toBe(reason);
    limiter.release();
    expect(limiter.running).toBe(0);
  });

  it("lets waiters in at once when the limit is raised, and keeps holders over a lowered one", async () => {
    const limiter = new Limiter(1);
    await limiter.acquire();
    const second = limiter.acquire();
    limiter.resize(2);
    await second;
    expect(limiter.running).toBe(2);
    limiter.resize(1);
    expect(limiter.running).toBe(2);
    const third = limiter.acquire();
    limiter.release();
    await tick();
    expect(limiter.queued).toBe(1);
    limiter.release();
    await third;
    expect(limiter.running).toBe(1);
  });
});
