import { MAX_CHANNEL_REFUSALS, isChannelRefusal, settleLease } from "./channel-budget.js";
import type { AttemptContext, Operation } from "./operation.js";
import type { Pool } from "./pool.js";
import type { Connection } from "./transport.js";

/**
 * Acquire a lease (checked by the pool before a retry), run `work`, and give the lease back the right way: released when
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
    // Health is the pool's: a retry asks it for a connection checked just now, since the one the failed attempt
    // used may be the reason it failed.
    const verify = attempt > 1 && refusals === 0;
    const lease = await pool.acquire(operation.target, { signal: operation.signal, parentSpan: operation.span, ...(verify ? { verify } : {}) });
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
