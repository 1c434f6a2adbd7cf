/**
 * The command line a mux client sends for one remote process: the exit waiter around the command, through the
 * login shell, and for a pty the terminal reset before it.
 */
import { ValidationError, loginShellCommand, type PtyOptions, type SpawnRequest, type Target } from "@tunnel-sh/core";
import { exitWaiterScript, terminalResetScript } from "@tunnel-sh/core/internal";

/** Linux's limit on one argument of a new program (`MAX_ARG_STRLEN`, 32 pages), the terminating NUL included. */
const MAX_ARGUMENT_BYTES = 128 * 1024;

/**
 * dropbear's `MAX_CMD_LEN` (sysoptions.h, 9000 in every release since 2012): a longer exec command is not refused but
 * ends the whole connection ("String too long"), every other channel of it included.
 */
export const DROPBEAR_MAX_LOGIN_LINE_BYTES = 9000;

/**
 * What the exit waiter adds around a command, as sent: the wrapper's own bytes (the perl waiter, the larger one),
 * with room for a nonce and the quoting of the command.
 */
export const WRAPPER_BYTES = Buffer.byteLength(loginShellCommand(exitWaiterScript("", "tunnel000000000000000000000000", { framed: true })), "utf8") + 256;

export interface SessionCommandOptions {
  readonly nonce: string;
  /** Wait through perl when the host has it. */
  readonly exact: boolean;
  /** The session's stdin carries frames (no pty, no local file as stdin). */
  readonly framed: boolean;
}

/** The remote command for `request`, the one argument ssh sends to the server. */
export function sessionCommand(request: SpawnRequest, options: SessionCommandOptions): string {
  const { nonce, exact, framed } = options;
  const pty = ptyOptions(request);
  if (pty === undefined) return loginShellCommand(exitWaiterScript(request.command, nonce, { exact, framed }));
  // Through a master, ssh -tt hands the server the terminal modes of a local terminal there is none of
  // (everything off, even onlcr); reset them to the pty driver's defaults, as a direct session gets, and set
  // the window size ssh could not take from a local terminal.
  const size = { ...(pty.rows !== undefined ? { rows: pty.rows } : {}), ...(pty.cols !== undefined ? { cols: pty.cols } : {}) };
  return loginShellCommand(`${terminalResetScript(size)}; ${exitWaiterScript(request.command, nonce, { exact, group: false })}`);
}

/**
 * A `ValidationError` when `command` (the whole remote command) is too long for one argument of a local ssh (the
 * kernel would refuse to start ssh, E2BIG) or for the server (`serverLimit`, dropbear's, which would drop the whole
 * connection): a property of this request, not of the connection.
 */
export function oversizedCommand(command: string, target: Target, serverLimit?: number): ValidationError | undefined {
  const bytes = Buffer.byteLength(command, "utf8");
  if (serverLimit !== undefined && bytes > serverLimit) {
    return new ValidationError("command", `is ${bytes} bytes with the wrapper, more than the server takes in one exec request (${serverLimit})`, {
      target,
    });
  }
  if (bytes < MAX_ARGUMENT_BYTES) return undefined;
  return new ValidationError("command", `is ${bytes} bytes with the wrapper, more than one argument of a local ssh can hold (${MAX_ARGUMENT_BYTES})`, {
    target,
  });
}

/** The request's pty options, or `undefined` without a pty. */
export function ptyOptions(request: SpawnRequest): PtyOptions | undefined {
  if (request.pty === undefined || request.pty === false) return undefined;
  return typeof request.pty === "object" ? request.pty : {};
}

/** The environment of the mux client: with a pty, ssh sends the local `TERM` in its pty request. */
export function clientEnvironment(
  env: Readonly<Record<string, string | undefined>>,
  pty: PtyOptions | undefined,
): Readonly<Record<string, string | undefined>> {
  return pty === undefined ? env : { ...env, TERM: termName(pty) };
}

function termName(pty: PtyOptions): string {
  const term = pty.term ?? "xterm";
  return /^[A-Za-z0-9._+-]+$/.test(term) ? term : "xterm";
}
