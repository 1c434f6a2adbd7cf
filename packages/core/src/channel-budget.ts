/**
 * The channel budget: how many channels one connection may hold open at once. A server caps sessions per
 * connection (sshd's `MaxSessions`, 10 by default) and says so only by refusing an open. The policy has one owner
 * per part, as `transport.ts` and `pool.ts` state:
 * - the transport reports a refused open as a `ChannelError` with `refused: true`, and neither retries nor queues it;
 * - the pool keeps each connection's budget (`ChannelBudget`): it lends no more channels than the budget, lowers it
 *   on a refusal and raises it again after clean use;
 * - the executor hands a refusal back to the pool (`settleLease`) and takes another lease, at most
 *   `MAX_CHANNEL_REFUSALS` times per attempt: through `ChannelLease`, for a command as for each step of a transfer
 *   and each housekeeping command after a script (the removal of its folder).
 *   A refusal is not a failed attempt, and nothing waits and opens again on the same channel: the pool's budget
 *   decides when and where the next channel opens.
 */
import { isConnectionError } from "./classify.js";
import { ChannelError } from "./errors.js";
import type { Lease } from "./pool.js";
import type { Connection } from "./transport.js";

/** Channel refusals one operation absorbs (moving to another channel each time) before it fails. */
export const MAX_CHANNEL_REFUSALS = 20;

/** Clean releases after which a budget lowered by refusals is raised by one channel. */
export const BUDGET_RECOVERY_RELEASES = 50;

/** The server refused to open a channel (its MaxSessions): a budget problem, not a failure of the host. */
export function isChannelRefusal(error: unknown): boolean {
  return ChannelError.is(error) && error.refused;
}

/** Return a lease after a failed attempt: evict on connection errors, lower the budget on a channel refusal. */
export function settleLease(lease: Lease, error: unknown): void {
  if (isConnectionError(error)) lease.destroy(error);
  else if (isChannelRefusal(error) && lease.refused) lease.refused();
  else lease.release();
}

/**
 * One connection's budget, as the pool keeps it: starts at `ceiling` (the lower of the pool's
 * `maxChannelsPerConnection` and the connection's `maxChannels`), never goes above it.
 * @example
 * const budget = new ChannelBudget(10);
 * budget.refused(3); // true: the server allows the 3 channels open now, and no more
 * budget.limit; // 3
 */
export class ChannelBudget {
  /** The budget before any refusal. */
  readonly ceiling: number;
  #limit: number;
  /** Clean releases since the last refusal, towards raising a lowered budget by one. */
  #cleanReleases = 0;

  constructor(ceiling: number) {
    this.ceiling = ceiling;
    this.#limit = ceiling;
  }

  /** Channels the connection may hold open now. */
  get limit(): number {
    return this.#limit;
  }

  /**
   * The server refused a channel while `busy` other channels of the connection were open. The refused channel never
   * opened: the server allows what the others hold, and no more. A refusal with nothing else open is usually sshd
   * still counting a session that just ended; only a second one in a row, at a budget of 1, gives the connection up.
   * Returns false when the connection should be given up.
   */
  refused(busy: number): boolean {
    this.#cleanReleases = 0;
    if (busy > 0) this.#limit = Math.min(this.#limit, busy);
    else if (this.#limit > 1) this.#limit = 1;
    else return false;
    return true;
  }

  /**
   * A lease came back clean. Refusals can undershoot (a session that had just ended, a channel released between two
   * refusals): after `BUDGET_RECOVERY_RELEASES` clean uses, try one channel more. Going over costs one more refusal.
   */
  released(): void {
    if (this.#limit >= this.ceiling) return;
    this.#cleanReleases += 1;
    if (this.#cleanReleases >= BUDGET_RECOVERY_RELEASES) {
      this.#cleanReleases = 0;
      this.#limit += 1;
    }
  }
}

export interface ChannelLeaseOptions {
  /** Takes the lease that replaces a refused one (the pool's `acquire` for the same target), waiting at most until `signal`. */
  readonly acquire: (signal: AbortSignal) => Promise<Lease>;
  /** Once aborted, a refusal is no longer moved to another lease. `run` may be given a signal of its own instead. */
  readonly signal: AbortSignal;
  /** Told of each refusal moved to another lease (for traces), with the count so far. */
  readonly onRefusal?: (refusals: number) => void;
}

export interface ChannelStepOptions {
  /** Whether a refusal may still be moved to another lease: false once something of the step ran. Default: always. */
  readonly movable?: () => boolean;
  /** Instead of the holder's signal: housekeeping moves its refusals on after the operation was cancelled. */
  readonly signal?: AbortSignal;
}

/**
 * A lease held across channels opened one after another (the steps of a transfer; a command's one process; the
 * housekeeping after a script). A step whose channel the server refused ran nothing: the lease goes back to the pool
 * as refused (`settleLease`, so the budget learns), another lease is taken, and the step runs again on its
 * connection — at most `MAX_CHANNEL_REFUSALS` times over the holder's life. Steps run one at a time (a step may run
 * another inside it, as a script runs its cleanup after its process ended); a second channel at once is a second
 * lease.
 * @example
 * const channel = new ChannelLease(lease, { acquire: (signal) => pool.acquire(target, { signal }), signal });
 * try { await channel.run((connection) => runProcess(connection, request)); channel.finish(); }
 * catch (error) { channel.finish(error); throw error; }
 */
export class ChannelLease {
  #lease: Lease | undefined;
  #refusals = 0;
  readonly #options: ChannelLeaseOptions;

  constructor(lease: Lease, options: ChannelLeaseOptions) {
    this.#lease = lease;
    this.#options = options;
  }

  /** The connection the next step opens its channel on. */
  get connection(): Connection {
    if (!this.#lease) throw new ChannelError("the channel was given back to the pool");
    return this.#lease.connection;
  }

  /** Refusals moved to another lease so far. */
  get refusals(): number {
    return this.#refusals;
  }

  /** Whether a lease is held and its connection is not known to be closed: a next step can open a channel on it. */
  get usable(): boolean {
    return this.#lease !== undefined && !this.#lease.connection.closed;
  }

  /** Run one step on the current lease's connection; a refused channel moves the step to another lease. */
  async run<T>(step: (connection: Connection) => Promise<T>, options: ChannelStepOptions = {}): Promise<T> {
    const signal = options.signal ?? this.#options.signal;
    for (;;) {
      const lease = this.#lease;
      const connection = this.connection;
      try {
        return await step(connection);
      } catch (error) {
        const movable = options.movable?.() ?? true;
        if (!isChannelRefusal(error) || !movable || this.#refusals >= MAX_CHANNEL_REFUSALS || signal.aborted) throw error;
        this.#refusals += 1;
        this.#options.onRefusal?.(this.#refusals);
        if (this.#lease !== lease) {
          // A step run inside this one (the housekeeping after it) was refused too and moved on already: the refused
          // lease went back then, and this step runs again on the one held now — when there is one.
          if (!this.#lease) throw error;
          continue;
        }
        this.#lease = undefined;
        if (lease) settleLease(lease, error);
        this.#lease = await this.#options.acquire(signal);
      }
    }
  }

  /**
   * Give the lease back: after success released (destroyed when `reuse` is false), after a failure settled by its
   * error (`settleLease`). Further calls do nothing.
   */
  finish(error?: unknown, reuse = true): void {
    const lease = this.#lease;
    this.#lease = undefined;
    if (!lease) return;
    if (error !== undefined) settleLease(lease, error);
    else if (reuse) lease.release();
    else lease.destroy();
  }
}
