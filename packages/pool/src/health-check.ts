import { ConnectError } from "@tunnel-sh/core";
import type { Connection, Target } from "@tunnel-sh/core";
import { unref } from "./pooled-connection.js";

/**
 * Ping `connection` within `timeoutMs`. `settled` is called once: with `undefined` when the ping answered, with the
 * error when it failed or timed out (its signal is then aborted with that error). The returned function cancels a
 * ping still in flight without calling `settled`.
 */
export function startPing(connection: Connection, target: Target, key: string, timeoutMs: number, settled: (error: unknown) => void): () => void {
  const controller = new AbortController();
  let done = false;
  const finish = (error: unknown): void => {
    if (done) return;
    done = true;
    clearTimeout(timer);
    if (error !== undefined) controller.abort(error);
    settled(error);
  };
  const timer = unref(
    setTimeout(() => {
      finish(new ConnectError(`ping to ${key} timed out after ${timeoutMs} ms`, { target }));
    }, timeoutMs),
  );
  let pinging: Promise<void>;
  try {
    pinging = Promise.resolve(connection.ping({ signal: controller.signal }));
  } catch (error) {
    pinging = Promise.reject(error);
  }
  pinging.then(
    () => finish(undefined),
    (error: unknown) => finish(error ?? new ConnectError("ping failed", { target })),
  );
  return () => {
    if (done) return;
    done = true;
    clearTimeout(timer);
    controller.abort();
  };
}
