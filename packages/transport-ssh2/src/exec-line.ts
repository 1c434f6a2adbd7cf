/** The one line an exec request carries for a spawn request, and its pty settings. */
import { ValidationError, inOwnProcessGroup, loginShellCommand, type SpawnRequest, type Target } from "@tunnel-sh/core";
import type { PseudoTtyOptions } from "ssh2";
import { DROPBEAR_MAX_EXEC_COMMAND_BYTES } from "./server-software.js";

/** What the line depends on besides the request. */
export interface ExecLineContext {
  readonly target: Target;
  /** The server signals only the session's pid (dropbear): commands without a pty run in a group of their own. */
  readonly signalsOnlySessionPid: boolean;
  /** The longest command one exec request may carry to this server (`server-software.ts`). */
  readonly maxExecCommandBytes: number;
  /** stdin was ended, with nothing written, before the channel opened: the command reads /dev/null. */
  readonly noInput: boolean;
}

export function ptyOptions(pty: SpawnRequest["pty"]): PseudoTtyOptions | undefined {
  if (pty === undefined || pty === false) return undefined;
  if (pty === true) return { term: "xterm", rows: 24, cols: 80 };
  return { term: pty.term ?? "xterm", rows: pty.rows ?? 24, cols: pty.cols ?? 80 };
}

/**
 * The exec line of `request`: the prepared script for `/bin/sh` through a line every login shell (fish and tcsh too)
 * parses alike. `devNullStdin` says the line reads /dev/null (as with `ssh -n`), so no EOF packet follows the exec
 * request — one packet less per command. Throws `ValidationError` for a line the server would not take.
 */
export function execLine(request: SpawnRequest, context: ExecLineContext): { readonly line: string; readonly devNullStdin: boolean } {
  const pty = ptyOptions(request.pty) !== undefined;
  let line = loginShellCommand(pty || !context.signalsOnlySessionPid ? request.command : inOwnProcessGroup(request.command));
  // Every login shell parses the redirect alike.
  const devNullStdin = !pty && context.noInput;
  if (devNullStdin) line += " </dev/null";
  const size = Buffer.byteLength(line, "utf8");
  const limit = context.maxExecCommandBytes;
  if (size > limit) {
    // sshd drops the whole connection on an oversize packet ("Bad packet length"), dropbear on a command past its
    // MAX_CMD_LEN ("String too long"): either way every other channel of the connection goes with it.
    const server = limit === DROPBEAR_MAX_EXEC_COMMAND_BYTES ? "a dropbear server takes" : "one SSH exec request carries safely";
    throw new ValidationError("command", `is ${size} bytes, more than ${server} (${limit}); pass large data through stdin`, { target: context.target });
  }
  return { line, devNullStdin };
}
