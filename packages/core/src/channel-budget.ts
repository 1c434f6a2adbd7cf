/**
 * The channel budget: how many channels one connection may hold open at once. A server caps sessions per
 * connection (sshd's `MaxSessions`, 10 by default) and says so only by refusing an open. The policy has one owner
 * per part, as `transport.ts` and `pool.ts` state:
 * - the transport reports a refused open as a `ChannelError` with `refused: true`, and neither retries nor queues it;
 * - the pool keeps each connection's budget (`ChannelBudget`): it lends no more channels than the budget, lowers it
 *   on a refusal and raises it again after clean use;
 * - the executor hands a refusal back to the pool (`settleLease`) and takes another lease, at most
 *   `MAX_CHANNEL_REFUSALS` times per operation. A refusal before the command started is not a failed attempt.
 */
import { isConnectionError } from "./classify.js";
import { ChannelError } from "./errors.js";
import type { Lease } from "./pool.js";

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
