/**
 * The private folder a script runs from: its body is written into a fresh `mktemp`-like folder (mode 0700, a random
 * name chosen locally) and the folder is removed afterwards — on success, failure, timeout and abort.
 */
import { randomBytes } from "node:crypto";
import { sleep } from "./abort.js";
import { ChannelLease, isChannelRefusal } from "./channel-budget.js";
import { TransferError, TunnelError } from "./errors.js";
import { housekeepingBackoff, removeAfterLoss } from "./housekeeping.js";
import type { AttemptContext, Operation } from "./operation.js";
import { runHousekeeping, runOperationProcess } from "./operation-process.js";
import type { ProcessSettings } from "./operation-process.js";
import type { Pool } from "./pool.js";
import { prepareCommand } from "./prepare.js";
import type { PreparedCommand } from "./prepare.js";
import { killNamingScript } from "./remote/kill.js";
import { removeScriptFolderScript, writeScriptFolderScript } from "./remote/script-folder.js";
import { formatTarget } from "./target.js";
import type { Connection } from "./transport.js";
import type { Script } from "./types.js";

export const SCRIPT_FOLDER_PREFIX = "tunnel-script.";

/** A new folder name; chosen before the upload, so the folder can be removed even when the upload itself was cut short. */
export function scriptFolderName(): string {
  return `${SCRIPT_FOLDER_PREFIX}${randomBytes(12).toString("hex")}`;
}

/** The longest script path a folder name gives, for refusing a command line that could not be sent, before any I/O. */
export const LONGEST_SCRIPT_PATH = `/tmp/${SCRIPT_FOLDER_PREFIX}${"0".repeat(24)}/script`;

/**
 * Writes the script body into a new private folder (mode 0700, `$TMPDIR` or `/tmp`), as the user the script runs as;
 * returns the folder. `mkdir` of a fresh random name fails rather than follow anything already there.
 */
export async function uploadScript(
  connection: Connection,
  operation: Operation,
  script: Script,
  folderName: string,
  settings: ProcessSettings,
): Promise<string> {
  const upload = prepareCommand({
    cmd: writeScriptFolderScript(folderName),
    ...(script.env !== undefined ? { env: script.env } : {}),
    ...(script.sudo !== undefined ? { sudo: script.sudo } : {}),
  });
  const context: AttemptContext = { started: false };
  const result = await runOperationProcess(connection, operation, context, upload, { stdin: script.content }, settings, script.sudo);
  const folder = result.stdout.trim();
  if (result.exitCode !== 0 || !folder.startsWith("/") || folder.includes("\n")) {
    throw new TransferError(`could not write the script into a temp folder on ${formatTarget(operation.target)}: ${result.stderr.trim()}`, {
      target: operation.target,
    });
  }
  return folder;
}

/**
 * Best effort, by the housekeeping policy (`housekeeping.ts`): bounded by `cleanupTimeout`, independent of the
 * operation's (possibly aborted) signal. The folder is removed on the operation's channel; when its connection is
 * gone (or the removal itself was cut), over another connection from the pool, so a lost connection does not leave a
 * script behind as long as the host can be reached again. Every housekeeping command is a step of a `ChannelLease`:
 * a refused channel goes back to the pool and the command moves to another lease, at most `MAX_CHANNEL_REFUSALS`
 * times a lease; past that the cleanup gives up.
 */
export async function removeScriptFolder(
  pool: Pool,
  channel: ChannelLease,
  operation: Operation,
  script: Script,
  folderName: string,
  settings: ProcessSettings,
): Promise<void> {
  const remove = prepareCommand({
    cmd: removeScriptFolderScript(folderName),
    ...(script.env !== undefined ? { env: script.env } : {}),
    ...(script.sudo !== undefined ? { sudo: script.sudo } : {}),
  });
  // Over another connection (`removeAfterLoss`): first stop whatever names the folder (the bracket keeps the pattern
  // from matching the shell that runs it; the name itself is kept out of that command line).
  const stopLeftovers = prepareCommand({
    cmd: killNamingScript("script", folderName.slice(SCRIPT_FOLDER_PREFIX.length)),
    ...(script.sudo !== undefined ? { sudo: script.sudo } : {}),
  });
  // Without the operation's signal: housekeeping runs on after a cancel, until its own budget is spent.
  const budget = AbortSignal.timeout(Math.max(1, settings.cleanupTimeout));
  const housekeeping = (on: ChannelLease, prepared: PreparedCommand) =>
    on.run((connection) => runHousekeeping(connection, prepared, settings), { signal: budget });
  const removeOn = async (on: ChannelLease): Promise<boolean> => (await housekeeping(on, remove)).exitCode === 0;
  const acquire = (signal: AbortSignal) => pool.acquire(operation.target, { signal, parentSpan: operation.span });
  let lastError: unknown;
  // Two tries on the operation's own channel, then over others from the pool until the budget is spent: the host
  // may be flapping, and each failed try waits a little longer.
  for (let tries = 1; tries <= 2 || !budget.aborted; tries++) {
    if (tries > 2) await sleep(housekeepingBackoff(tries - 2));
    try {
      if (tries <= 2 && channel.usable) {
        if (await removeOn(channel)) return;
        continue;
      }
      const other = new ChannelLease(await acquire(budget), {
        acquire,
        signal: budget,
        onRefusal: (refusals) => operation.span.addEvent("tunnel.channel.refused", { "tunnel.channel.refusals": refusals }),
      });
      try {
        const removed = await removeAfterLoss(
          () => housekeeping(other, stopLeftovers),
          () => removeOn(other),
        );
        other.finish();
        if (removed) return;
      } catch (error) {
        other.finish(error);
        throw error;
      }
    } catch (error) {
      lastError = error;
      // A refusal that comes through a ChannelLease is one past its bound (or past the budget): the host keeps refusing.
      if (isChannelRefusal(error)) break;
    }
  }
  operation.span.addEvent("tunnel.script.cleanup_failed", { "error.type": TunnelError.is(lastError) ? lastError.code : "Error" });
}
