/**
 * Remote processes of an operation, through core's derived run (`runProcess`): the operation's own, with its
 * cancellation and the sudo exchange, and housekeeping ones (a kill, a removal) on their own time budget.
 */
import { TunnelError } from "./errors.js";
import { escalateKill } from "./kill-escalation.js";
import type { EscalationSignal } from "./kill-escalation.js";
import type { AttemptContext, Operation } from "./operation.js";
import { prepareCommand } from "./prepare.js";
import type { PreparedCommand } from "./prepare.js";
import { killSudoGroupsScript } from "./remote/kill.js";
import { isStreamInput, runProcess } from "./run.js";
import type { RunRequest, RunResult } from "./run.js";
import type { Connection } from "./transport.js";
import type { SudoOptions } from "./types.js";

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/** The executor settings a remote process of an operation reads when it starts. */
export interface ProcessSettings {
  /** Bound in ms for sudo's password prompt. */
  readonly sudoTimeout: number;
  /** Budget in ms for a housekeeping command. */
  readonly cleanupTimeout: number;
}

/** One remote process of the operation, with the operation's cancellation and the sudo exchange. */
export async function runOperationProcess(
  connection: Connection,
  operation: Operation,
  context: AttemptContext,
  prepared: PreparedCommand,
  extra: Omit<RunRequest, "command" | "signal" | "timeoutMs" | "sudo" | "onStarted">,
  settings: ProcessSettings,
  sudo?: boolean | SudoOptions,
): Promise<RunResult> {
  // Set once the sudo-wrapped command was let through its gate (see prepare.ts): only then can anything of it run.
  let released = false;
  const streamInput = isStreamInput(extra.stdin);
  // Assigned field by field: object spreads are a measurable part of a command's cost.
  const request: Mutable<RunRequest> = {
    command: prepared.command,
    start: prepared.start,
    signal: operation.signal,
    onStarted: () => {
      context.started = true;
      // runProcess reads a stdin stream from now on (see its `stdin`).
      if (streamInput) context.inputTaken = true;
    },
  };
  if (extra.pty !== undefined) request.pty = extra.pty;
  if (extra.stdin !== undefined) request.stdin = extra.stdin;
  if (extra.onStdout !== undefined) request.onStdout = extra.onStdout;
  if (extra.onStderr !== undefined) request.onStderr = extra.onStderr;
  if (extra.maxOutputBytes !== undefined) request.maxOutputBytes = extra.maxOutputBytes;
  if (prepared.sudo) {
    request.sudo = {
      ...prepared.sudo,
      promptTimeoutMs: settings.sudoTimeout,
      onPrompt: () => operation.span.addEvent("tunnel.sudo.prompt_answered"),
      onRelease: () => {
        released = true;
        operation.span.addEvent("tunnel.sudo.released");
      },
    };
  }
  // A connection already closed sends nothing; on a live one the exec request may reach the server from now on.
  if (!connection.closed) context.requested = true;
  if (!prepared.sudo || sudo === undefined || sudo === false) return runProcess(connection, request);
  // A process run under sudo belongs to another user: the signal the login user's channel sends reaches sudo but
  // not the command's children. On cancel after the gate opened, first stop the command's process groups as that
  // user, then the channel. Before the gate opened nothing of the request runs: closing the channel is enough (sudo
  // runs as the login user's real uid and dies with the session; the gated shell reads EOF), and no second sudo
  // round trip is made.
  const inner = new AbortController();
  let ended: Promise<unknown> = Promise.resolve();
  const onAbort = () => {
    if (!released) {
      inner.abort(operation.signal.reason);
      return;
    }
    // The one TERM→KILL policy (kill-escalation.ts), each signal sent to the groups as the command's user.
    void escalateKill({
      send: (signal) => killSudoGroups(connection, operation, prepared.nonce, signal, sudo, settings),
      ended,
      graceMs: SUDO_KILL_GRACE_MS,
    }).finally(() => inner.abort(operation.signal.reason));
  };
  operation.signal.addEventListener("abort", onAbort, { once: true });
  if (operation.signal.aborted) onAbort();
  try {
    const running = runProcess(connection, { ...request, signal: inner.signal });
    ended = running;
    const result = await running;
    // The group kill may end the command before the channel is stopped: it still ended because of the stop.
    if (operation.signal.aborted) throw operation.signal.reason;
    return result;
  } finally {
    operation.signal.removeEventListener("abort", onAbort);
  }
}

/**
 * Runs a prepared command that tidies up after an operation (a kill, a removal): on its own time budget and
 * without the operation's signal, which may already be aborted.
 */
export function runHousekeeping(connection: Connection, prepared: PreparedCommand, settings: ProcessSettings): Promise<RunResult> {
  return runProcess(connection, {
    command: prepared.command,
    start: prepared.start,
    timeoutMs: settings.cleanupTimeout,
    ...(prepared.sudo ? { sudo: { ...prepared.sudo, promptTimeoutMs: settings.sudoTimeout } } : {}),
  });
}

/**
 * How long a sudo'd command has after TERM before KILL (and after KILL before its channel is stopped): shorter than a
 * transport's grace, since each step is a housekeeping exec of its own and the channel's escalation follows.
 */
const SUDO_KILL_GRACE_MS = 300;

/**
 * Sends `signal` to the process groups of the sudo command with this nonce: the group of its `sudo` process (found by
 * the ready token in its command line; the bracket keeps the killer from matching itself) and those of sudo's children
 * (sudo's `use_pty` puts the command in a session of its own).
 */
async function killSudoGroups(
  connection: Connection,
  operation: Operation,
  nonce: string,
  signal: EscalationSignal,
  sudo: boolean | SudoOptions,
  settings: ProcessSettings,
): Promise<void> {
  const kill = prepareCommand({ cmd: killSudoGroupsScript(nonce, signal), sudo });
  try {
    await runHousekeeping(connection, kill, settings);
  } catch (error) {
    operation.span.addEvent("tunnel.cancel.kill_failed", { "error.type": TunnelError.is(error) ? error.code : "Error" });
  }
}
