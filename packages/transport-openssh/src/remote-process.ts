/**
 * One remote process: a mux client (`ssh -S <socket> -T|-tt -- host <wrapped command>`) through the master. This
 * file spawns it and routes its output; the command line is `session-command.ts`, its stdin `session-stdin.ts`,
 * stopping it `process-stop.ts` and how it ended `process-outcome.ts`; `standby-session.ts` opens sessions ahead of
 * their commands.
 */
import { spawn, type ChildProcess, type StdioOptions } from "node:child_process";
import { constants } from "node:os";
import { PassThrough, type Readable, type Writable } from "node:stream";
import { AbortError, ChannelError, ConnectError, type ExitStatus, type RemoteProcess, type SpawnRequest, type Target, TunnelError } from "@tunnel-sh/core";
import { commandFrame, type WaiterReport } from "@tunnel-sh/core/internal";
import { TailBuffer } from "./master.js";
import type { ProcessFiles, ProcessHost, TrackedProcess } from "./process-host.js";
import { processOutcome } from "./process-outcome.js";
import { ProcessStopper } from "./process-stop.js";
import { clientEnvironment, oversizedCommand, ptyOptions, sessionCommand } from "./session-command.js";
import { SessionStdin } from "./session-stdin.js";
import type { SharedSession } from "./shared-session.js";
import type { StandbySession } from "./standby-session.js";
import { MarkerFilter, newNonce } from "./wrapper.js";

export type { ProcessFiles, ProcessHost } from "./process-host.js";

const PRE_START_LIMIT = 64 * 1024;
const PTY_REFUSED = /PTY allocation request failed/;

const signalNames = new Map<number, string>(Object.entries(constants.signals).map(([name, number]) => [number, name]));

export class OpenSshRemoteProcess implements RemoteProcess, TrackedProcess {
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
  private aborted = false;
  private readonly sshStderr = new TailBuffer();
  private preStart: Buffer[] = [];
  private preStartBytes = 0;
  private readonly pty: boolean;
  private readonly sessionStdin: SessionStdin;
  private readonly stopper: ProcessStopper;
  private ptyRefused = false;
  /** Taken from a standby session that had not reported ready yet: the command frame waits for that report. */
  private awaitingReady = false;

  /**
   * @param standby a ready session to run the command in instead of spawning a client (no pty, no local files)
   * @param shared a session that runs the command without a client of its own, likewise: the master's own session
   *   (the connection's first command) or a session worker; when it ends before it is ready, the command takes a
   *   client of its own
   * @param room settles once the connection has room for a session of this process's own (idle workers stopped)
   */
  constructor(
    private readonly host: ProcessHost,
    private readonly request: SpawnRequest,
    private readonly files: ProcessFiles = {},
    private readonly standby?: StandbySession,
    private readonly shared?: SharedSession,
    room?: Promise<void>,
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
    this.pty = ptyOptions(request) !== undefined;
    const stdout = new PassThrough();
    const stderr = new PassThrough();
    this.stdout = stdout;
    this.stderr = stderr;
    const stdin = new PassThrough();
    this.stdin = stdin;
    this.sessionStdin = new SessionStdin(stdin, !this.pty && files.stdin === undefined);
    this.stopper = new ProcessStopper({
      host,
      stdin: this.sessionStdin,
      started: this.started,
      exit: this.exit,
      child: () => this.child,
      groupId: () => this.pid,
      settled: () => this.settled,
    });
    const launch = () => {
      try {
        this.launch(stdout, stderr);
      } catch (error) {
        // spawn() never throws: report through started/exit.
        const failure = tunnelErrorFrom(error, host.target);
        stdout.end();
        stderr.end();
        this.fail(failure);
      }
    };
    if (room) void room.then(launch);
    else launch();
  }

  private launch(stdout: PassThrough, stderr: PassThrough): void {
    const signal = this.request.signal;
    const host = this.host;
    if (signal?.aborted) {
      stdout.end();
      stderr.end();
      this.fail(new AbortError("the command was aborted before it started", { target: host.target }));
      return;
    }
    const onMarker = (marker: WaiterReport) => this.onReport(marker, stderr);
    if (this.standby) {
      // A session whose waiter is already running on the host: the command is its first frame.
      const taken = this.standby.take(onMarker);
      const child = taken.child;
      this.child = child;
      host.track(this);
      this.routeOutput(child, taken.markers, onMarker, stdout, stderr, true);
      this.sessionStdin.attach(child.stdin);
      // Still on its way, the waiter says which it is (and so how the frame reads) in its ready report.
      if (taken.waiter) child.stdin!.write(commandFrame(this.request.command, taken.waiter));
      else this.awaitingReady = true;
      this.watchChild(child, stdout, stderr);
    } else if (this.shared) {
      const session = this.shared;
      host.track(this);
      session.take(onMarker, (ready) => {
        if (!ready) {
          // The session ended before its waiter was ready (no perl on the host): the command never ran.
          if (this.aborted) {
            host.untrack(this);
            stdout.end();
            stderr.end();
            this.fail(new AbortError("the command was aborted before it started", { target: host.target }));
            return;
          }
          try {
            this.launchClient(stdout, stderr);
          } catch (error) {
            host.untrack(this);
            stdout.end();
            stderr.end();
            this.fail(tunnelErrorFrom(error, host.target));
          }
          return;
        }
        const taken = session.handOver();
        const child = taken.child;
        this.child = child;
        this.routeOutput(child, taken.markers, onMarker, stdout, stderr, true);
        this.sessionStdin.attach(child.stdin);
        // Aborted while the waiter was on its way: the command is never sent; the session's end stops the waiter.
        if (this.aborted) child.kill("SIGTERM");
        else child.stdin!.write(commandFrame(this.request.command, "perl"));
        this.watchChild(child, stdout, stderr);
      });
    } else this.launchClient(stdout, stderr);

    if (signal) {
      const onAbort = () => {
        this.aborted = true;
        void this.stopper.stopForAbort();
      };
      signal.addEventListener("abort", onAbort, { once: true });
      void this.exit.then(
        () => signal.removeEventListener("abort", onAbort),
        () => signal.removeEventListener("abort", onAbort),
      );
    }
  }

  /** A mux client of its own for the command. */
  private launchClient(stdout: PassThrough, stderr: PassThrough): void {
    const host = this.host;
    const nonce = newNonce();
    const remoteCommand = sessionCommand(this.request, { nonce, exact: host.exactExitStatus, framed: this.sessionStdin.framed });
    const oversized = oversizedCommand(remoteCommand, host.target, host.maxLoginLineBytes);
    if (oversized) {
      host.untrack(this);
      stdout.end();
      stderr.end();
      this.fail(oversized);
      return;
    }
    const onMarker = (marker: WaiterReport) => this.onReport(marker, stderr);
    const args = [...host.clientArgs, this.pty ? "-tt" : "-T", "--", host.target.host, remoteCommand];
    const stdio: StdioOptions = [this.files.stdin ?? "pipe", this.files.stdout ?? "pipe", "pipe"];
    // Detached like the master: the application, not the terminal's Ctrl-C, decides when this client stops.
    const child = spawn(host.sshPath, args, { stdio, env: clientEnvironment(host.env, ptyOptions(this.request)), detached: true });
    this.child = child;
    host.track(this);
    this.routeOutput(child, new MarkerFilter(nonce, onMarker), onMarker, stdout, stderr, false);
    this.sessionStdin.attach(child.stdin);
    this.watchChild(child, stdout, stderr);
  }

  /** Settle once the client (or the session standing in for one) is over and the output complete. */
  private watchChild(child: ChildProcess, stdout: PassThrough, stderr: PassThrough): void {
    const host = this.host;
    let spawnError: Error | undefined;
    child.on("error", (error) => {
      spawnError = error;
    });
    child.on("close", (code) => {
      host.untrack(this);
      this.sessionStdin.detach();
      // `exit` settles once the output is complete: the last stderr bytes (held until the pid report, or passing
      // the marker filter) may still be on their way into the streams when ssh exits.
      // (An aborted process's output is dropped: it may never be complete.)
      if (this.aborted) {
        if (!stdout.writableEnded) stdout.end();
        if (!stderr.writableEnded) stderr.end();
        void this.finish(code, spawnError);
      } else void Promise.all([finished(stdout), finished(stderr)]).then(() => this.finish(code, spawnError));
    });
  }

  /** A report line of the waiter: the group started, or how the command ended. */
  private onReport(marker: WaiterReport, stderr: PassThrough): void {
    if (marker.kind === "server") return;
    if (marker.kind === "ready") {
      if (this.awaitingReady) this.child?.stdin?.write(commandFrame(this.request.command, marker.waiter));
      this.awaitingReady = false;
      return;
    }
    if (marker.kind === "pid") {
      if (this.pid !== undefined) return;
      this.pid = marker.pid;
      this.waiter = marker.waiter;
      // The waiter is known now, and with it the data frames it reads.
      this.sessionStdin.startFraming(marker.waiter);
      for (const chunk of this.preStart) stderr.write(chunk);
      this.preStart = [];
      this.resolveStarted();
      return;
    }
    this.status =
      marker.kind === "exit"
        ? { exitCode: marker.code, signal: null }
        : { exitCode: null, signal: marker.signal ?? signalNames.get(marker.number) ?? `SIG${marker.number}` };
    // The remote command is over: nothing on the other side reads the session's stdin any more.
    this.sessionStdin.release();
  }

  /** The client's stdout and stderr into the process's streams, the waiter's report lines taken out. */
  private routeOutput(
    child: ChildProcess,
    markerStream: MarkerFilter | Readable,
    onMarker: (marker: WaiterReport) => void,
    stdout: PassThrough,
    stderr: PassThrough,
    stderrPiped: boolean,
  ): void {
    if (this.pty) {
      // stdout and stderr share the terminal; the local stderr carries only ssh's own messages.
      // A pty always has a client of its own, so its filter is one.
      const filter = markerStream as MarkerFilter;
      if (child.stdout) child.stdout.pipe(filter).pipe(stdout);
      else stdout.end();
      // A server that refuses the pty (PermitTTY no) runs the command without one: the wrapper's markers then
      // arrive on stderr, next to ssh's "PTY allocation request failed".
      const stderrMarkers = new MarkerFilter(filter.nonce, onMarker);
      child.stderr!.pipe(stderrMarkers);
      stderrMarkers.on("data", (chunk: Buffer) => {
        this.sshStderr.append(chunk);
        if (this.pid === undefined && !this.ptyRefused) this.ptyRefused = PTY_REFUSED.test(this.sshStderr.toString());
      });
      stderr.end();
      return;
    }
    if (child.stdout) child.stdout.pipe(stdout);
    else stdout.end();
    // Not piped yet: a client of its own, whose filter is one.
    if (!stderrPiped) child.stderr!.pipe(markerStream as MarkerFilter);
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

  private async finish(code: number | null, spawnError: Error | undefined): Promise<void> {
    const outcome = await processOutcome(
      {
        code,
        spawnError,
        aborted: this.aborted,
        pty: this.pty,
        ptyRefused: this.ptyRefused,
        started: this.pid !== undefined,
        status: this.status,
        sshStderr: this.sshStderr.toString(),
        lastSignal: this.stopper.sent[this.stopper.sent.length - 1],
      },
      this.host,
    );
    if ("status" in outcome) this.succeed(outcome.status);
    else this.fail(outcome.error);
  }

  private succeed(status: ExitStatus): void {
    if (this.settled) return;
    this.settled = true;
    this.resolveExit(status);
  }

  private fail(error: TunnelError): void {
    if (this.settled) return;
    this.settled = true;
    if (ChannelError.is(error) && error.refused) this.host.refused();
    this.rejectStarted(error);
    this.rejectExit(error);
  }

  /** The connection closed under this process. */
  connectionClosed(): void {
    this.child?.kill("SIGTERM");
  }

  kill(signal = "SIGTERM"): Promise<void> {
    return this.stopper.kill(signal);
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

function tunnelErrorFrom(error: unknown, target: Target): TunnelError {
  if (TunnelError.is(error)) return error;
  return new ConnectError(`could not start ssh: ${error instanceof Error ? error.message : String(error)}`, { phase: "channel", target });
}
