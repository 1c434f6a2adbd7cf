/**
 * Running a transfer's remote shell commands: one command line on the transfer's channel (a non-zero exit is a
 * `TransferError` naming what failed), and the chunking that keeps a command over many paths under the length one
 * argument may have.
 */
import { TransferError } from "../errors.js";
import { prepareCommand } from "../prepare.js";
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

/** Remote command lines are kept well under Linux's 128 KiB limit for one argument (`sh -c <command>`). */
const MAX_COMMAND_LENGTH = 48 * 1024;

/** Split `items` into runs whose rendered command parts stay under `MAX_COMMAND_LENGTH` together. */
export function chunked<T>(items: readonly T[], render: (item: T) => string): T[][] {
  const chunks: T[][] = [];
  let current: T[] = [];
  let length = 0;
  for (const item of items) {
    const size = render(item).length + 4;
    if (current.length > 0 && length + size > MAX_COMMAND_LENGTH) {
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
