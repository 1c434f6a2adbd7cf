/**
 * Running a transfer's remote shell commands: one command line on the transfer's channel (a non-zero exit is a
 * `TransferError` naming what failed), and the chunking that keeps a command over many paths under the length one
 * argument may have.
 */
import { TransferError } from "../errors.js";
import { encodeForPrintf } from "../login-shell.js";
import { prepareCommand } from "../prepare.js";
import { quote } from "../quote.js";
import { runProcess } from "../run.js";
import type { RunResult } from "../run.js";
import type { SudoOptions } from "../types.js";
import type { TransferContext } from "./context.js";

/** Run a remote shell command line on the transfer's channel; a non-zero exit is a `TransferError`. */
export async function remote(context: TransferContext, cmd: string, what: string, sudo?: boolean | SudoOptions): Promise<RunResult> {
  const prepared = prepareCommand({ cmd, ...(sudo !== undefined ? { sudo } : {}) });
  const result = await context.channel.run((connection) =>
    runProcess(connection, {
      command: prepared.command,
      start: prepared.start,
      signal: context.signal,
      maxOutputBytes: 1024 * 1024,
      ...(prepared.sudo ? { sudo: { ...prepared.sudo, promptTimeoutMs: context.sudoTimeout } } : {}),
    }),
  );
  if (result.exitCode !== 0) {
    // The first line is the one that says what failed (`find: unrecognized: -printf`); tools such as busybox follow
    // it with their usage text.
    const detail =
      result.stderr
        .split("\n")
        .map((line) => line.trim())
        .find((line) => line !== "") ?? "";
    throw new TransferError(`${what} failed on the host${detail ? `: ${detail}` : ` (exit ${result.exitCode ?? result.signal})`}`, {
      target: context.target,
    });
  }
  return result;
}

/**
 * The items of one command line, as the login shell receives them (`encodeForPrintf`: up to four bytes a byte), are
 * kept under 48 KiB: well inside Linux's 128 KiB for one argument (`sh -c <command>`) and one exec request. A server
 * that takes less (`Connection.maxCommandBytes`: dropbear's 9 000 bytes) gets what fits below its limit, with room
 * for the command around the items.
 */
const MAX_ITEMS_BYTES = 48 * 1024;
// The snippet around the items, a process-group wrapper (~1.8 KiB sent) and a sudo command line around them.
const COMMAND_AROUND_ITEMS = 4 * 1024;
const MIN_ITEMS_BYTES = 512;

/** The byte budget for one command's items, and how an item is measured against it. */
function itemsBudget(context: TransferContext): { readonly budget: number; readonly size: (text: string) => number } {
  const limit = context.channel.connection.maxCommandBytes;
  if (limit === undefined || !Number.isFinite(limit) || limit - COMMAND_AROUND_ITEMS >= MAX_ITEMS_BYTES) {
    return { budget: MAX_ITEMS_BYTES, size: (text) => encodeForPrintf(text).length };
  }
  // Close to a server's own limit, measure an item as it is sent in the worst case: quoted twice more (a sudo command
  // line, a process-group wrapper) before the login-shell encoding.
  return {
    budget: Math.max(MIN_ITEMS_BYTES, Math.floor(limit) - COMMAND_AROUND_ITEMS),
    size: (text) => encodeForPrintf(quote(quote(text))).length,
  };
}

/** Split `items` into runs whose rendered command parts, as sent, fit in one command line on the transfer's host. */
export function chunked<T>(context: TransferContext, items: readonly T[], render: (item: T) => string): T[][] {
  const { budget, size: measure } = itemsBudget(context);
  const chunks: T[][] = [];
  let current: T[] = [];
  let length = 0;
  for (const item of items) {
    const size = measure(render(item)) + 4;
    if (current.length > 0 && length + size > budget) {
      chunks.push(current);
      current = [];
      length = 0;
    }
    current.push(item);
    length += size;
  }
  if (current.length > 0) chunks.push(current);
  return chunks;
}

/** A mode as `chmod` takes it: `0644`. */
export const octal = (mode: number): string => mode.toString(8).padStart(4, "0");
