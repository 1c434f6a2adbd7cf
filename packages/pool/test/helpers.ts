import { vi } from "vitest";
import type { Lease } from "@tunnel-sh/core";

/** Let every pending promise callback run (fake timers stay where they are). */
export async function flush(): Promise<void> {
  await vi.advanceTimersByTimeAsync(0);
}

export interface Tracked<T> {
  readonly promise: Promise<T>;
  state: "pending" | "resolved" | "rejected";
  value: T | undefined;
  error: unknown;
}

/** Observe a promise without awaiting it, so a test can check it is still pending. */
export function track<T>(promise: Promise<T>): Tracked<T> {
  const tracked: Tracked<T> = { promise, state: "pending", value: undefined, error: undefined };
  promise.then(
    (value) => {
      tracked.state = "resolved";
      tracked.value = value;
    },
    (error: unknown) => {
      tracked.state = "rejected";
      tracked.error = error;
    },
  );
  return tracked;
}

export function leaseOf(tracked: Tracked<Lease>): Lease {
  if (tracked.state !== "resolved" || !tracked.value) throw new Error(`expected a lease, the acquire is ${tracked.state}`);
  return tracked.value;
}
