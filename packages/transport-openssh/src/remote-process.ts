/**
 * One remote process: a mux client (`ssh -S <socket> -T|-tt -- host <wrapped command>`) through the master.
 */
import { spawn, type ChildProcess, type StdioOptions } from "node:child_process";
import { constants } from "node:os";
import { PassThrough, type Readable, type Writable } from "node:stream";
import {
  AbortError,
  ConnectError,
  type ExitStatus,
  type PtyOptions,
  type RemoteProcess,
  type SpawnRequest,
  type Target,
  TunnelError,
  UnsupportedHostError,
  ValidationError,
  formatTarget,
  loginShellCommand,
} from "@tunnel-sh/core";
import {
  STDIN_DONE_FRAME,
  StdinFramer,
  exitWaiterScript,
  killGroupScript,
  stdinSignalFrame,
  terminalResetScript,
  type WaiterReport,
} from "@tunnel-sh/core/internal";
import { TailBuffer } from "./master.js";
import { normalizeSshError } from "./normalize-error.js";
import { signalName } from "./options.js";
import { MarkerFilter, newNonce } from "./wrapper.js";

/** What a process needs from its connection. */
export interface ProcessHost {
  readonly target: Target;
  readonly sshPath: string;
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly killGraceMs: number;
  /** Wait through perl on the host when it has one (exact status), or always through the login shell. */
  readonly exactExitStatus: boolean;
  /** ssh arguments of a client of the master, up to (not including) `-T`/`-tt` and the host. Built once. */
  readonly clientArgs: readonly string[];
  /** Is the master still there? Waits briefly for it to notice a dropped link. */
  masterLost(): Promise<TunnelError | undefined>;
  /** The mux client could not reach the master: mark the connection lost. */
  reportLost(error: TunnelError): void;
  /** Run `command` through the master without the wrapper; resolves with ssh's exit status. */
  runRaw(command: string): Promise<number | null>;
  /**
   * The server allows one session per connection (`maxChannels: 1`, sshd's `MaxSessions 1`): no second exec can
   * carry a kill, so stopping a process closes its session instead.
   */
  readonly singleSession: boolean;
  /** Bookkeeping of live processes. */
  track(process: OpenSshRemoteProcess): void;
  untrack(process: OpenSshRemoteProcess): void;
}

const PRE_START_LIMIT = 64 * 1024;
const PTY_REFUSED = /PTY allocation request failed/;
/** Linux's limit on one argument of a new program (`MAX_ARG_STRLEN`, 32 pages), the terminating NUL included. */
const MAX_ARGUMENT_BYTES = 128 * 1024;

/**
 * Local files handed to the mux client as its stdin or stdout (transfers): the master reads or writes them directly,
 * so the bytes never pass through this process. The matching stream of the `RemoteProcess` is then empty.
 */
export interface ProcessFiles {
  readonly stdin?: number;
  readonly stdout?: number;
}

const signalNames = new Map<number, string>(Object.entries(constants.signals).map(([name, number]) => [number, name]));

export class OpenSshRemoteProcess implements RemoteProcess {
  readonly stdin: Writable;
  readonly stdout: Readable;
  readonly stderr: Readable;
  readonly started: Promise<void>;
  readonly exit: Promise<ExitStatus>;

  private child: ChildProcess | undefined;
  private resolveStarted!: () => void;
  private rejectStarted!: (error: TunnelError) => void;
  private resolveExit!: (status: ExitStatus) => void;
  private rejectExit!: (error: TunnelError) => void;
  private pid: number | undefined;
  private status: ExitStatus | undefined;
  /** Which waiter ran on the host: "perl" (exact status) or "sh" (129-192 read as signals). */
  waiter: "perl" | "sh" | undefined;
  private settled = false;
  private sentSignals: string[] = [];
  private aborted = false;
  private readonly sshStderr = new TailBuffer();
  private preStart: Buffer[] = [];
  private preStartBytes = 0;
  private readonly pty: boolean;
  /**
   * The session's stdin carries frames (core's `StdinFramer`): the command's stdin, its end and the signals for its
   * group, so a kill needs no second channel and a closed channel stops the command. Not with a pty (the terminal
   * would echo and translate the frames) or a local file as stdin (the master reads that file itself).
   */
  private readonly framed: boolean;
  private framer: StdinFramer | undefined;
  private killing: Promise<void> | undefined;
  private ptyRefused = false;

  constructor(
    private readonly host: ProcessHost,
    private readonly request: SpawnRequest,
    private readonly files: ProcessFiles = {},
  ) {
    this.started = new Promise<void>((resolve, reject) => {
      this.resolveStarted = resolve;
      this.rejectStarted = reject;
    });
    this.exit = new Promise<ExitStatus>((resolve, reject) => {
      this.resolveExit = resolve;
      this.rejectExit = reject;
    });
    // Callers may only look at `exit`; an unobserved `started` rejection must not crash the process.
    this.started.catch(() => undefined);
    this.exit.catch(() => undefined);
    this.pty = request.pty !== undefined && request.pty !== false;
    this.framed = !this.pty && files.stdin === undefined;
    const stdout = new PassThrough();
    const stderr = new PassThrough();
    this.stdout = stdout;
    this.stderr = stderr;
    const stdin = new PassThrough();
    this.stdin = stdin;
    try {
      this.launch(stdin, stdout, stderr);
    } catch (error) {
      // spawn() never throws: report through started/exit.
      const failure = TunnelErrorFrom(error, host.target);
      stdout.end();
      stderr.end();
      this.fail(failure);
    }
  }

  private launch(stdin: PassThrough, stdout: PassThrough, stderr: PassThrough): void {
    const signal = this.request.signal;
    if (signal?.aborted) {
      stdout.end();
      stderr.end();
      this.fail(new AbortError("the command was aborted before it started", { target: this.host.target }));
      return;
    }
    const nonce = newNonce();
    const host = this.host;
    const remoteCommand = this.remoteCommand(nonce);
    if (Buffer.byteLength(remoteCommand, "utf8") >= MAX_ARGUMENT_BYTES) {
      // The kernel would refuse to start ssh (E2BIG): a property of this request, not of the connection.
      stdout.end();
      stderr.end();
      this.fail(
        new ValidationError(
          "command",
          `is ${Buffer.byteLength(remoteCommand, "utf8")} bytes with the wrapper, more than one argument of a local ssh can hold (${MAX_ARGUMENT_BYTES})`,
          {
            target: host.target,
          },
        ),
      );
      return;
    }
    const args = [...host.clientArgs, this.pty ? "-tt" : "-T", "--", host.target.host, remoteCommand];
    // ssh sends the local TERM in its pty request.
    const env = this.pty ? { ...host.env, TERM: termName(typeof this.request.pty === "object" ? this.request.pty : {}) } : host.env;
    const stdio: StdioOptions = [this.files.stdin ?? "pipe", this.files.stdout ?? "pipe", "pipe"];
    // Detached like the master: the application, not the terminal's Ctrl-C, decides when this client stops.
    const child = spawn(host.sshPath, args, { stdio, env, detached: true });
    this.child = child;
    this.host.track(this);

    const onMarker = (marker: WaiterReport) => {
      if (marker.kind === "pid") {
        if (this.pid === undefined) {
          this.pid = marker.pid;
          this.waiter = marker.waiter;
          if (this.framed && child.stdin) {
            // The waiter is known now, and with it the data frames it reads.
            this.framer = new StdinFramer(marker.waiter === "perl" ? "perl" : "sh");
            stdin.pipe(this.framer).pipe(child.stdin, { end: false });
          }
          this.flushPreStart(stderr);
          this.resolveStarted();
        }
      } else {
        this.status =
          marker.kind === "exit"
            ? { exitCode: marker.code, signal: null }
            : { exitCode: null, signal: marker.signal ?? signalNames.get(marker.number) ?? `SIG${marker.number}` };
        // The remote command is over. A mux client keeps the session open until its own stdin reaches EOF,
        // so end it here: nothing on the other side reads it any more.
        this.releaseStdin();
      }
    };
    const markerStream = new MarkerFilter(nonce, onMarker);
    if (this.pty) {
      // stdout and stderr share the terminal; the local stderr carries only ssh's own messages.
      if (child.stdout) child.stdout.pipe(markerStream).pipe(stdout);
      else stdout.end();
      // A server that refuses the pty (PermitTTY no) runs the command without one: the wrapper's markers then
      // arrive on stderr, next to ssh's "PTY allocation request failed".
      const stderrMarkers = new MarkerFilter(nonce, onMarker);
      child.stderr!.pipe(stderrMarkers);
      stderrMarkers.on("data", (chunk: Buffer) => {
        this.sshStderr.append(chunk);
        if (this.pid === undefined && !this.ptyRefused) this.ptyRefused = PTY_REFUSED.test(this.sshStderr.toString());
      });
      stderr.end();
    } else {
      if (child.stdout) child.stdout.pipe(stdout);
      else stdout.end();
      child.stderr!.pipe(markerStream);
      markerStream.on("data", (chunk: Buffer) => {
        if (this.pid !== undefined) {
          stderr.write(chunk);
          return;
        }
        // Before the wrapper's first report, stderr is ssh's own (a refused session, a missing master) — or,
        // rarely, the login shell's startup files; it is released only once the command is known to have started.
        this.sshStderr.append(chunk);
        if (this.preStartBytes < PRE_START_LIMIT) {
          this.preStart.push(chunk);
          this.preStartBytes += chunk.length;
        }
      });
      markerStream.on("end", () => stderr.end());
    }

    if (child.stdin) {
      // Framed, stdin waits for the waiter's first report (above) to learn how to frame it.
      if (!this.framed) stdin.pipe(child.stdin);
      child.stdin.on("error", () => {
        // EPIPE when the remote side stopped reading; the exit status tells what happened.
      });
    } else {
      stdin.resume();
    }
    let spawnError: Error | undefined;
    child.on("error", (error) => {
      spawnError = error;
    });
    child.on("close", (code) => {
      this.host.untrack(this);
      if (this.framer) stdin.unpipe(this.framer);
      else if (child.stdin) stdin.unpipe(child.stdin);
      // Nothing reads stdin any more: let late writes drain instead of stalling the writer forever.
      stdin.resume();
      // `exit` settles once the output is complete: the last stderr bytes (held until the pid report, or passing
      // the marker filter) may still be on their way into the streams when ssh exits.
      // (An aborted process's output is dropped: it may never be complete.)
      if (this.aborted) {
        if (!stdout.writableEnded) stdout.end();
        if (!stderr.writableEnded) stderr.end();
        void this.finish(code, spawnError);
      } else void Promise.all([finished(stdout), finished(stderr)]).then(() => this.finish(code, spawnError));
    });

    if (signal) {
      const onAbort = () => {
        this.aborted = true;
        void this.stopForAbort();
      };
      signal.addEventListener("abort", onAbort, { once: true });
      void this.exit.then(
        () => signal.removeEventListener("abort", onAbort),
        () => signal.removeEventListener("abort", onAbort),
      );
    }
  }

  private releaseStdin(): void {
    const child = this.child;
    if (!child?.stdin || child.stdin.writableEnded) return;
    const stdin = this.stdin as PassThrough;
    if (this.framed) {
      if (this.framer) {
        stdin.unpipe(this.framer);
        this.framer.unpipe(child.stdin);
      }
      stdin.resume();
      // Done: the end of the channel's stdin that follows is not a closed channel.
      child.stdin.end(STDIN_DONE_FRAME);
      return;
    }
    stdin.unpipe(child.stdin);
    stdin.resume();
    child.stdin.end();
  }

  private remoteCommand(nonce: string): string {
    const exact = this.host.exactExitStatus;
    if (!this.pty) return loginShellCommand(exitWaiterScript(this.request.command, nonce, { exact, framed: this.framed }));
    // Through a master, ssh -tt hands the server the terminal modes of a local terminal there is none of
    // (everything off, even onlcr); reset them to the pty driver's defaults, as a direct session gets, and set
    // the window size ssh could not take from a local terminal.
    const pty = typeof this.request.pty === "object" ? this.request.pty : {};
    const size = { ...(pty.rows !== undefined ? { rows: pty.rows } : {}), ...(pty.cols !== undefined ? { cols: pty.cols } : {}) };
    return loginShellCommand(`${terminalResetScript(size)}; ${exitWaiterScript(this.request.command, nonce, { exact, group: false })}`);
  }

  private flushPreStart(stderr: PassThrough): void {
    for (const chunk of this.preStart) stderr.write(chunk);
    this.preStart = [];
  }

  private async finish(code: number | null, spawnError: Error | undefined): Promise<void> {
    if (spawnError) {
      if ((spawnError as NodeJS.ErrnoException).code === "E2BIG") {
        this.fail(new ValidationError("command", "is too long for the argument list of a local ssh (E2BIG)", { target: this.host.target }));
        return;
      }
      this.fail(normalizeSshError({ phase: "channel", stderr: `ssh: ${spawnError.message}`, exitCode: null, target: this.host.target }));
      return;
    }
    if (this.aborted) {
      this.fail(new AbortError("the command was aborted; the remote process was stopped", { target: this.host.target }));
      return;
    }
    if (this.ptyRefused) {
      // The command ran without the terminal it asked for; the next attempt would get none either.
      this.fail(
        new UnsupportedHostError("the server refused to allocate a pseudo-terminal (pty), e.g. PermitTTY no; the command ran without one", {
          reason: "pty",
          detail: "PTY allocation request failed",
          target: this.host.target,
        }),
      );
      return;
    }
    if (this.status) {
      this.succeed(this.status);
      return;
    }
    if (this.pid === undefined) {
      const refusal = this.hostRefusal(code);
      if (refusal) {
        this.fail(refusal);
        return;
      }
      // Never started: ssh's own message says why — unless the master died under the request, which a mux client
      // talking to a dying master cannot always tell.
      let error = normalizeSshError({ phase: "channel", stderr: this.sshStderr.toString(), exitCode: code, target: this.host.target });
      if (error.code !== "CONNECTION_LOST" && !(error as { refused?: boolean }).refused) {
        error = (await this.host.masterLost()) ?? error;
      }
      if (error.code === "CONNECTION_LOST") this.host.reportLost(error);
      this.fail(error);
      return;
    }
    // Started but the wrapper never reported: either the link or master is gone, or the whole process group got
    // SIGKILL (the one signal the wrapper cannot outlive).
    const lost = await this.host.masterLost();
    if (lost) {
      this.fail(lost);
      return;
    }
    const sent = this.sentSignals[this.sentSignals.length - 1];
    this.succeed({ exitCode: null, signal: `SIG${sent ?? "KILL"}` });
  }

  /**
   * The session ran but the wrapper never reported: the host refused the pty, or the login shell did not run the
   * command (a `nologin` or restricted shell). ssh exits with the remote status then, not 255. Both would fail the
   * same way again, so they are never retried.
   */
  private hostRefusal(code: number | null): TunnelError | undefined {
    const text = this.sshStderr.toString();
    const target = this.host.target;
    if (this.pty && /PTY allocation request failed/.test(text)) {
      return new UnsupportedHostError(`the server refused a pseudo-terminal on ${formatTarget(target)}`, {
        reason: "pty",
        detail: "PTY allocation request failed",
        target,
      });
    }
    if (code === null || code === 255) return undefined;
    const detail = text
      .split("\n")
      .map((line) => line.trim())
      .find((line) => line !== "");
    return new UnsupportedHostError(
      `the login shell on ${formatTarget(target)} did not run the command (ssh exited with ${code})${detail ? `: ${detail}` : ""}`,
      { reason: "shell", target, ...(detail !== undefined ? { detail } : {}) },
    );
  }

  private succeed(status: ExitStatus): void {
    if (this.settled) return;
    this.settled = true;
    this.resolveExit(status);
  }

  private fail(error: TunnelError): void {
    if (this.settled) return;
    this.settled = true;
    this.rejectStarted(error);
    this.rejectExit(error);
  }

  /** The connection closed under this process. */
  connectionClosed(): void {
    this.child?.kill("SIGTERM");
  }

  async kill(signal = "SIGTERM"): Promise<void> {
    const name = signalName(signal);
    if (this.settled || !this.child) return;
    try {
      await this.started;
    } catch {
      return;
    }
    if (this.settled || this.pid === undefined) return;
    this.sentSignals.push(name);
    if (this.framed) {
      // In band: the waiter signals the group. Every server, one session or many.
      const stdin = this.child.stdin;
      if (stdin && !stdin.writableEnded) stdin.write(stdinSignalFrame(name));
      // After SIGKILL the sh waiter's group is gone with the command and cannot report; nothing is left to feed.
      if (name === "KILL") this.releaseStdin();
      return;
    }
    if (this.host.singleSession) {
      // Unframed (a pty, or a local file as stdin) and nothing can run beside this session: the session is closed,
      // and with it the connection, whose one session the command would hold until it ends: the pool replaces it.
      // A pty's group is hung up; an upload's `cat` reads the end of its input.
      const child = this.child;
      // The master holds copies of the client's pipes; close our ends once the client is gone.
      child.once("exit", () => {
        child.stdout?.destroy();
        child.stderr?.destroy();
      });
      this.host.reportLost(
        new ConnectError("the connection was closed to stop a command: the server allows one session per connection", {
          lost: true,
          phase: "exec",
          target: this.host.target,
        }),
      );
      child.kill("SIGTERM");
      return;
    }
    // A second exec through the master signals the whole process group the wrapper leads (killing the local
    // mux client would leave a no-pty remote command running).
    const status = await this.host.runRaw(killGroupScript(name, this.pid));
    // After SIGKILL the wrapper cannot report; the session only ends once the client's stdin is closed.
    if (name === "KILL") this.releaseStdin();
    if (status !== 0 && !this.settled) {
      // The master refused the extra session (or is gone): closing the local client is all that is left.
      this.child.kill("SIGTERM");
    }
  }

  private stopForAbort(): Promise<void> {
    this.killing ??= (async () => {
      if (this.pid === undefined) {
        // Not started yet: stopping the client stops the session request.
        try {
          await Promise.race([this.started, delay(this.host.killGraceMs)]);
        } catch {
          return;
        }
        if (this.pid === undefined) {
          this.child?.kill("SIGTERM");
          return;
        }
      }
      await this.kill("SIGTERM");
      if (await this.settledWithin(this.host.killGraceMs)) return;
      await this.kill("SIGKILL");
      if (await this.settledWithin(this.host.killGraceMs)) return;
      this.child?.kill("SIGKILL");
    })();
    return this.killing;
  }

  private async settledWithin(ms: number): Promise<boolean> {
    const done = this.exit.then(
      () => true,
      () => true,
    );
    return Promise.race([done, delay(ms).then(() => false)]);
  }
}

/** Resolves once everything has been written into `stream` and it was ended (its `finish`). */
function finished(stream: PassThrough): Promise<void> {
  if (stream.writableFinished) return Promise.resolve();
  return new Promise((resolve) => {
    stream.once("finish", () => resolve());
    stream.once("close", () => resolve());
  });
}

const delay = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms).unref?.());

function termName(pty: PtyOptions): string {
  const term = pty.term ?? "xterm";
  return /^[A-Za-z0-9._+-]+$/.test(term) ? term : "xterm";
}

function TunnelErrorFrom(error: unknown, target: Target): TunnelError {
  if (TunnelError.is(error)) return error;
  return new ConnectError(`could not start ssh: ${error instanceof Error ? error.message : String(error)}`, { phase: "channel", target });
}
