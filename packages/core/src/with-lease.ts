import { MAX_CHANNEL_REFUSALS, isChannelRefusal, settleLease } from "./channel-budget.js";
import { TunnelError } from "./errors.js";
import type { AttemptContext, Operation } from "./operation.js";
import type { Pool } from "./pool.js";
import type { Connection } from "./transport.js";

/**
 * Acquire a lease, health-check it before a retry, run `work`, and give the lease back the right way: released when
 * `connectionReuse()` says so (else destroyed) after success, settled by the error after a failure.
 * A channel the server refused before the command started is not a failed attempt: the pool lowers that
 * connection's budget and the work moves to another channel, up to `MAX_CHANNEL_REFUSALS` times.
 */
export async function withLease<T>(
  pool: Pool,
  operation: Operation,
  attempt: number,
  connectionReuse: () => boolean,
  work: (connection: Connection) => Promise<T>,
  context?: AttemptContext,
): Promise<T> {
  for (let refusals = 0; ; refusals++) {
    let lease = await pool.acquire(operation.target, { signal: operation.signal, parentSpan: operation.span });
    if (attempt > 1 && refusals === 0) {
      try {
        await lease.connection.ping({ signal: operation.signal });
      } catch (error) {
        // The connection the retry got is not healthy: drop it and take a fresh one.
        lease.destroy(error);
        operation.span.addEvent("tunnel.connection.unhealthy", { "error.type": TunnelError.is(error) ? error.code : "Error" });
        lease = await pool.acquire(operation.target, { signal: operation.signal, parentSpan: operation.span });
      }
    }
    try {
      const value = await work(lease.connection);
      if (connectionReuse()) lease.release();
      else lease.destroy();
      return value;
    } catch (error) {
      settleLease(lease, error);
      if (isChannelRefusal(error) && context !== undefined && !context.started && refusals < MAX_CHANNEL_REFUSALS && !operation.signal.aborted) {
        operation.span.addEvent("tunnel.channel.refused", { "tunnel.channel.refusals": refusals + 1 });
        continue;
      }
      throw error;
    }
  }
}
