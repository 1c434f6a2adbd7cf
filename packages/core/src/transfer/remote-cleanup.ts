/**
 * Removing a failed transfer's temp files from the host, whatever happened to the operation: within the executor's
 * `cleanupTimeout`, independent of the operation's (maybe aborted) signal.
 */
import { sleep } from "../abort.js";
import { TransferError } from "../errors.js";
import { housekeepingBackoff, removeAfterLoss } from "../housekeeping.js";
import { prepareCommand } from "../prepare.js";
import { quote } from "../quote.js";
import { runProcess } from "../run.js";
import type { Connection } from "../transport.js";
import type { TransferContext } from "./context.js";
import { chunked } from "./remote-commands.js";
import { tempNonces } from "./temp-names.js";

/**
 * By the housekeeping policy (`housekeeping.ts`): remove temp files (or staging folders) on the transfer's own
 * channel; when its connection was lost, over another connection from the pool (which a retry then reuses), so an
 * interrupted transfer leaves nothing behind as long as the host can be reached again within the budget.
 */
export async function cleanupRemote(context: TransferContext, temps: readonly string[]): Promise<void> {
  if (temps.length === 0) return;
  const budget = context.cleanupTimeout;
  const deadline = Date.now() + budget;
  const remaining = () => Math.max(1, deadline - Date.now());
  const commands = chunked(context, temps, quote).map((chunk) => prepareCommand({ cmd: `rm -rf -- ${chunk.map(quote).join(" ")}` }));
  const removeOn = async (connection: Connection): Promise<void> => {
    for (const { command, start } of commands) {
      const result = await runProcess(connection, { command, start, timeoutMs: remaining() });
      if (result.exitCode !== 0) throw new TransferError(`could not remove temp files: ${result.stderr.trim()}`, { target: context.target });
    }
  };
  if (!context.channel.connection.closed) {
    try {
      // A refused channel moves to another lease as any step's would, within the cleanup's own budget.
      await context.channel.run(removeOn, { signal: AbortSignal.timeout(remaining()) });
      return;
    } catch {
      // Whatever stopped the removal here (a lost link, a timeout), try over another connection.
    }
  }
  const borrow = context.borrow;
  if (!borrow) return;
  // Over another connection (`removeAfterLoss`): first stop every process that names one of these temp files, so
  // none creates one after the removal. The bracket keeps the pattern from matching the shell that runs it.
  const nonces = tempNonces(temps);
  const stop =
    nonces.length > 0 ? prepareCommand({ cmd: `pkill -KILL -f -- ${quote(`[t]unnel-(${nonces.join("|")})[.]part`)} 2>/dev/null; exit 0` }).command : undefined;
  // Keep trying, over whatever connection the pool can give, until the budget is spent: the host may be flapping.
  for (let tries = 1; Date.now() < deadline; tries++) {
    // On the cleanup's own budget: the operation's signal may have been aborted (the very reason for the cleanup).
    const borrowed = await borrow(undefined, AbortSignal.timeout(remaining())).catch(() => undefined);
    if (borrowed) {
      let failure: unknown;
      try {
        const connection = borrowed.channel.connection;
        const stopLeftovers = async () => {
          if (stop !== undefined) await runProcess(connection, { command: stop, timeoutMs: remaining() });
        };
        const removeAll = async () => {
          await removeOn(connection);
          return true;
        };
        // `removeOn` throws when a removal fails: the next try, over another connection, follows.
        await removeAfterLoss(stopLeftovers, removeAll);
        return;
      } catch (error) {
        failure = error;
      } finally {
        borrowed.done(failure);
      }
    }
    if (Date.now() < deadline) await sleep(Math.min(housekeepingBackoff(tries), remaining()));
  }
}
