import { ChannelLease } from "./channel-budget.js";
import type { AttemptContext, Operation } from "./operation.js";
import type { Pool } from "./pool.js";
import type { Connection } from "./transport.js";

/**
 * A lease on a channel for `operation`, held as a `ChannelLease` (refusals go back to the pool's budget and move to
 * another lease). `verify` asks the pool for a connection checked just now; `stop` ends the wait for the lease early;
 * `budget` replaces the operation's signal (housekeeping, which runs on after the operation was cancelled).
 */
export async function leaseChannel(
  pool: Pool,
  operation: Operation,
  options: { readonly verify?: boolean; readonly stop?: AbortSignal; readonly budget?: AbortSignal } = {},
): Promise<ChannelLease> {
  const base = options.budget ?? operation.signal;
  const acquire = (signal: AbortSignal, verify = false) =>
    pool.acquire(operation.target, {
      signal: options.stop ? AbortSignal.any([signal, options.stop]) : signal,
      parentSpan: operation.span,
      ...(verify ? { verify } : {}),
    });
  return new ChannelLease(await acquire(base, options.verify === true), {
    acquire,
    signal: base,
    onRefusal: (refusals) => operation.span.addEvent("tunnel.channel.refused", { "tunnel.channel.refusals": refusals }),
  });
}

/**
 * Acquire a lease (checked by the pool before a retry), run `work`, and give the lease back the right way: released when
 * `connectionReuse()` says so (else destroyed) after success, settled by the error after a failure.
 * A channel the server refused before the command started is not a failed attempt: the pool lowers that
 * connection's budget and the work moves to another lease, up to `MAX_CHANNEL_REFUSALS` times. Work of several
 * steps (a transfer) runs each step through `channel.run`, which moves a refused step alike.
 */
export async function withLease<T>(
  pool: Pool,
  operation: Operation,
  attempt: number,
  connectionReuse: () => boolean,
  work: (connection: Connection, channel: ChannelLease) => Promise<T>,
  context?: AttemptContext,
): Promise<T> {
  // Health is the pool's: a retry asks it for a connection checked just now, since the one the failed attempt
  // used may be the reason it failed.
  const channel = await leaseChannel(pool, operation, { verify: attempt > 1 });
  try {
    const value = await channel.run((connection) => work(connection, channel), { movable: () => context !== undefined && !context.started });
    channel.finish(undefined, connectionReuse());
    return value;
  } catch (error) {
    channel.finish(error);
    throw error;
  }
}
