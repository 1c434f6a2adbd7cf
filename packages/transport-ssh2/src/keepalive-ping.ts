/** `ping()`: one `keepalive@openssh.com` global request and its answer, a real round trip to the server. */
import { AbortError, type Target, type TunnelError } from "@tunnel-sh/core";
import type { Client } from "ssh2";
import { normalizeError } from "./normalize-error.js";

export function keepalivePing(client: Client, target: Target, closedError: () => TunnelError | undefined, signal: AbortSignal | undefined): Promise<void> {
  if (signal?.aborted) return Promise.reject(new AbortError("the ping was aborted", { phase: "connect", target }));
  const closed = closedError();
  if (closed) return Promise.reject(closed);
  return new Promise<void>((resolve, reject) => {
    let settled = false;
    const settle = (error?: unknown): void => {
      if (settled) return;
      settled = true;
      signal?.removeEventListener("abort", onAbort);
      if (error === undefined) resolve();
      else reject(error);
    };
    const onAbort = (): void => settle(new AbortError("the ping was aborted", { phase: "connect", target }));
    signal?.addEventListener("abort", onAbort, { once: true });
    const answered = (error: unknown): void => {
      // REQUEST_FAILURE (`true`) is an answer too; only an Error means the connection is gone.
      if (error instanceof Error) settle(closedError() ?? normalizeError(error, { phase: "connect", target }));
      else settle();
    };
    try {
      // A keepalive@openssh.com global request and its reply — exactly what ssh2's own keepalive sends.
      // ssh2 offers no public call for it, so queue the reply callback the way its keepalive does.
      const internals = client as unknown as { _protocol?: { ping?: () => void }; _callbacks?: Array<(error: unknown) => void> };
      if (typeof internals._protocol?.ping === "function" && Array.isArray(internals._callbacks)) {
        internals._callbacks.push(answered);
        internals._protocol.ping();
      } else {
        // Public fallback: cancelling a forward that does not exist is answered (with a failure) by the server.
        client.unforwardIn("127.0.0.1", 0, (error) => answered(error && /No response|Not connected/.test(error.message) ? error : undefined));
      }
    } catch (error) {
      settle(normalizeError(error, { phase: "connect", target }));
    }
  });
}
