/**
 * Housekeeping after an operation — removing a script's folder, or a failed transfer's temp files — follows one
 * policy, written here once:
 * - it runs within a budget of its own (the executor's `cleanupTimeout`), not the operation's signal, so it goes on
 *   after a cancel;
 * - on the operation's own channel while its connection lives; once that is gone, over other connections the pool
 *   lends, try after try until the budget is spent (the host may be flapping), each failed try waiting a little
 *   longer (`housekeepingBackoff`);
 * - over another connection the lost session may still have a process on the host (its link was cut, not its
 *   shell): that process is stopped first, then the removal runs, and once more a moment later for a process that
 *   was about to create what was removed (`removeAfterLoss`).
 */
import { sleep } from "./abort.js";

/** How long after the first removal over another connection the second one runs. */
export const RECHECK_AFTER_LOSS_MS = 500;

/** The wait after the `failedTries`-th failed try over another connection: 100 ms more each time, at most 1 s. */
export function housekeepingBackoff(failedTries: number): number {
  return Math.min(1_000, 100 * failedTries);
}

/**
 * Over a connection other than the operation's own: stop what the lost session may have left running, remove, and
 * remove once more `RECHECK_AFTER_LOSS_MS` later. Resolves with whether both removals succeeded.
 */
export async function removeAfterLoss(stopLeftovers: () => Promise<unknown>, remove: () => Promise<boolean>): Promise<boolean> {
  await stopLeftovers();
  if (!(await remove())) return false;
  await sleep(RECHECK_AFTER_LOSS_MS);
  return remove();
}
