/**
 * Core's derived run: one remote process on a connection, collected into a result.
 *
 * Every transport gets these behaviours for free, on top of `Connection.spawn`:
 * UTF-8-safe collection with a byte cap, live output callbacks, stdin from a string, bytes or a stream,
 * the sudo password answered once after the nonce prompt appears (and stripped from the output),
 * timeouts and aborts that stop the remote process, and typed errors only.
 */
import type { Readable } from "node:stream";
import { AbortError, SudoError, TimeoutError } from "./errors.js";
import type { TunnelError } from "./errors.js";
import { OutputCollector } from "./output.js";
import { startLine } from "./prepare.js";
import { StartWatcher, SudoWatcher } from "./run-watchers.js";
import type { Connection, RemoteProcess, SpawnRequest } from "./transport.js";
import type { PtyOptions } from "./types.js";

/** Whether `stdin` is a stream, which can be read once only (strings and bytes can be sent again). */
export function isStreamInput(stdin: RunRequest["stdin"]): stdin is Readable {
  return stdin !== undefined && typeof stdin === "object" && "pipe" in stdin;
}

/** Default cap on the collected bytes of each stream. */
export const DEFAULT_MAX_OUTPUT_BYTES = 16 * 1024 * 1024;

export interface SudoExchange {
  /**
   * A token that appears in sudo's prompt (a random nonce). Matched anywhere in the output — sudo-rs rewrites prompts
   * around it — and stripped. When it appears the password is written to stdin, once; a second prompt means the password
   * was wrong.
   */
  readonly prompt: string;
  /** The password. Absent for `sudo -n`, where a prompt never appears. */
  readonly password?: string;
  /**
   * A token the prepared command prints (to stderr) once sudo let it through, before the user's command starts.
   * It ends the prompt phase: user stdin is sent only after it, and it is stripped from the output.
   */
  readonly ready: string;
  /**
   * A line to write to stdin once `ready` arrived, before the command's own stdin (see `prepare.ts`: the prepared
   * command runs nothing until it reads it). Never written once the run was stopped.
   */
  readonly gate?: string;
  /** Called right before the gate line is written: from now on the command may run. */
  readonly onRelease?: () => void;
  /** Bound on the prompt phase (from spawn until `ready`). Past it the process is stopped with a `SudoError`. */
  readonly promptTimeoutMs?: number;
  /** Called when the prompt was answered (for traces). */
  readonly onPrompt?: () => void;
}

export interface RunRequest {
  /** The prepared command line. */
  readonly command: string;
  readonly pty?: boolean | PtyOptions;
  /**
   * Data for stdin, then EOF. Absent: EOF at once (after the sudo exchange, with `sudo`). A stream is read only once
   * the process has started (after the sudo exchange, with `sudo`): a refused channel leaves it unread.
   */
  readonly stdin?: string | Uint8Array | Readable;
  readonly onStdout?: (text: string) => void;
  readonly onStderr?: (text: string) => void;
  /** Cap on collected bytes per stream. Default 16 MiB. */
  readonly maxOutputBytes?: number;
  /** Aborting stops the remote process; the run rejects with `AbortError`. */
  readonly signal?: AbortSignal;
  /** Past this the remote process is stopped and the run rejects with `TimeoutError`. */
  readonly timeoutMs?: number;
  readonly sudo?: SudoExchange;
  /**
   * The prepared command's start token (`PreparedCommand.start`), printed first by the `/bin/sh` that runs it.
   * It is stripped from the output, and a process that ends without it fails with `UnsupportedHostError`
   * (reason `shell`): the login shell never ran the command (a `nologin` or restricted shell), and the host's own
   * message is kept as the error's `detail`. On a connection whose login shell already ran a prepared command (its
   * token came back), a command that begins with the token's line (`startLine`) is sent without that line.
   */
  readonly start?: string;
  /** Called once the remote command has started (the channel is open). Failures before it are safe to retry. */
  readonly onStarted?: () => void;
}

export interface RunResult {
  readonly exitCode: number | null;
  readonly signal: string | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly truncated: boolean;
  readonly durationMs: number;
}

/**
 * Run one remote process on `connection` and collect it.
 * Rejects only with `TunnelError`s: the transport's, `TimeoutError`, `AbortError`, or `SudoError`.
 * @example const { exitCode, stdout } = await runProcess(connection, { command: "uname -a", timeoutMs: 10_000 });
 */
export async function runProcess(connection: Connection, request: RunRequest): Promise<RunResult> {
  if (request.signal?.aborted) throw new AbortError(undefined, { target: connection.target });
  const startedAt = performance.now();
  const maxBytes = request.maxOutputBytes ?? DEFAULT_MAX_OUTPUT_BYTES;
  const stdout = new OutputCollector(maxBytes, request.onStdout);
  const stderr = new OutputCollector(maxBytes, request.onStderr);

  // The login shell of an SSH connection is fixed when it authenticates: once it has run one prepared command's line
  // (the start token arrived), later commands on the same connection go without the token and its extra packet.
  let command = request.command;
  let start: StartWatcher | undefined;
  if (request.start !== undefined) {
    const line = startLine(request.start);
    if (provenShells.has(connection) && command.startsWith(line)) command = command.slice(line.length);
    else start = new StartWatcher(request.start);
  }

  // Only a timeout or the sudo exchange stops the process on its own (one controller, whose `reason` records why);
  // otherwise the caller's signal goes to the transport as it is.
  const stop = request.timeoutMs !== undefined || request.sudo !== undefined ? new AbortController() : undefined;
  let stopReason: TunnelError | undefined;
  const stopWith = (error: TunnelError) => {
    if (!stop || stop.signal.aborted) return;
    stopReason = error;
    stop.abort(error);
  };
  const onCallerAbort = () => stopWith(new AbortError(undefined, { target: connection.target }));
  if (stop) request.signal?.addEventListener("abort", onCallerAbort, { once: true });
  /** Why the run was stopped, if it was: a stop of our own, or the caller's abort. */
  const stoppedBy = (): TunnelError | undefined =>
    stopReason ?? (!stop && request.signal?.aborted ? new AbortError(undefined, { target: connection.target }) : undefined);
  let timer: NodeJS.Timeout | undefined;
  let promptTimer: NodeJS.Timeout | undefined;
  if (request.timeoutMs !== undefined) {
    const timeoutMs = request.timeoutMs;
    timer = setTimeout(() => stopWith(new TimeoutError(`the command timed out after ${timeoutMs} ms`, { timeoutMs, target: connection.target })), timeoutMs);
  }

  const signal = stop ? stop.signal : request.signal;
  const spawnRequest: { -readonly [K in keyof SpawnRequest]: SpawnRequest[K] } = { command };
  if (request.pty !== undefined) spawnRequest.pty = request.pty;
  if (signal) spawnRequest.signal = signal;
  const process = connection.spawn(spawnRequest);
  process.stdin.on("error", ignore);
  const onStarted = request.onStarted;
  void process.started.then(onStarted, ignore);

  const sendStdin = () => writeStdin(process, request.stdin, () => stoppedBy() !== undefined);
  const sudo = stop && request.sudo ? new SudoWatcher(request.sudo, process, sendStdin, stopWith, () => stop.signal.aborted, connection) : undefined;
  if (sudo && request.sudo?.promptTimeoutMs !== undefined) {
    const promptTimeoutMs = request.sudo.promptTimeoutMs;
    promptTimer = setTimeout(() => {
      if (!sudo.done) {
        stopWith(
          new SudoError(`sudo did not let the command start within ${promptTimeoutMs} ms`, {
            reason: "prompt-timeout",
            target: connection.target,
          }),
        );
      }
    }, promptTimeoutMs);
  }
  if (!sudo) sendStdin();

  const outFilter = sudo?.filter();
  const errFilter = sudo?.filter();
  const outStart = start?.filter();
  const errStart = start?.filter();
  const passOut = (chunk: Buffer) => stdout.write(outFilter ? outFilter.write(chunk) : chunk);
  const passErr = (chunk: Buffer) => stderr.write(errFilter ? errFilter.write(chunk) : chunk);
  process.stdout.on(
    "data",
    outStart || outFilter ? (chunk: Buffer) => passOut(outStart ? outStart.write(chunk) : chunk) : (chunk: Buffer) => stdout.write(chunk),
  );
  process.stderr.on(
    "data",
    errStart || errFilter ? (chunk: Buffer) => passErr(errStart ? errStart.write(chunk) : chunk) : (chunk: Buffer) => stderr.write(chunk),
  );

  try {
    const status = await process.exit;
    const stopped = stoppedBy();
    if (stopped) throw stopped;
    if (outStart) passOut(outStart.flush());
    if (errStart) passErr(errStart.flush());
    if (outFilter) stdout.write(outFilter.flush());
    if (errFilter) stderr.write(errFilter.flush());
    stdout.end();
    stderr.end();
    const result: RunResult = {
      exitCode: status.exitCode,
      signal: status.signal,
      stdout: stdout.text(),
      stderr: stderr.text(),
      truncated: stdout.truncated || stderr.truncated,
      durationMs: performance.now() - startedAt,
    };
    if (start) {
      if (!start.seen) throw start.failure(result, connection);
      provenShells.add(connection);
    }
    if (sudo && !sudo.done) throw sudo.failure(result);
    return result;
  } catch (error) {
    // A stop we asked for wins over however the transport reported it (usually an AbortError).
    const stopped = stoppedBy();
    if (stopped) throw stopped;
    throw error;
  } finally {
    if (timer !== undefined) clearTimeout(timer);
    if (promptTimer !== undefined) clearTimeout(promptTimer);
    if (stop) request.signal?.removeEventListener("abort", onCallerAbort);
  }
}

/** Connections whose login shell has run a prepared command's line: see `runProcess`. */
const provenShells = new WeakSet<Connection>();

/**
 * For stdin's errors (the remote side may exit before reading its stdin, EPIPE: the exit status tells what happened)
 * and a rejected `started` (which `exit` reports too).
 */
function ignore(): void {}

/**
 * Strings and bytes are written at once (the transport holds them until the channel opens). A stream is piped only
 * once the process has started: a channel that was refused or never opened leaves it unread, so the request can
 * still go out whole on another channel or in another attempt.
 */
function writeStdin(process: RemoteProcess, stdin: RunRequest["stdin"], stopped: () => boolean): void {
  if (stdin === undefined) {
    process.stdin.end();
  } else if (!isStreamInput(stdin)) {
    process.stdin.end(stdin);
  } else {
    process.started.then(() => {
      if (stopped()) return void process.stdin.end();
      stdin.on("error", () => process.stdin.end());
      stdin.pipe(process.stdin);
    }, ignore);
  }
}
