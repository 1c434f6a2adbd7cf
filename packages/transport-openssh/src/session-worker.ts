/**
 * A session that runs many commands: one mux client whose session runs core's session worker (`sessionWorkerScript`)
 * on the host, each command handed to it on the session's stdin.
 *
 * A mux client of its own costs a command an `ssh` start here and a session, login shell, `/bin/sh` and perl on the
 * host: at several commands at once on one connection, that is the machine's CPU. A worker pays it once; a command
 * then costs one fork and exec on the host. The connection keeps the workers it has started (`connection.ts`) and
 * hands each framed command (no pty, no local file) to an idle one. To a process, a worker looks like a mux client of
 * its own (`WorkerClient`): the same frames on stdin, the same reports, its stdout ended by the worker's end frame
 * instead of the channel's close, `close` once the command and its output are over.
 *
 * The host needs perl: without it the worker exits at once, having run nothing, and the command takes a client of
 * its own (as does every command on that connection from then on).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { PassThrough, Writable } from "node:stream";
import { loginShellCommand } from "@tunnel-sh/core";
import { SESSION_WORKER_IDLE_SECONDS, STDIN_DONE_FRAME, WorkerOutputReader, sessionWorkerScript, type WaiterReport } from "@tunnel-sh/core/internal";
import { TailBuffer } from "./master.js";
import type { ProcessHost } from "./process-host.js";
import { SessionClient, type SharedSession, type TakenSession } from "./shared-session.js";
import { MarkerFilter, newNonce } from "./wrapper.js";

/** How a worker ended, for its connection. */
export interface WorkerEnd {
  /** It never reported ready. */
  readonly unready: boolean;
  /** It was stopped by its connection. */
  readonly stopped: boolean;
  /** ssh's exit code (0: the host has no perl, or its login shell ran no worker). */
  readonly code: number | null;
  /** What ssh printed (a refused session, a missing master). */
  readonly sshStderr: string;
}

export interface WorkerEvents {
  /** The worker finished a command and waits for the next. */
  idle(worker: SessionWorker): void;
  /** The worker's client exited. */
  gone(worker: SessionWorker, end: WorkerEnd): void;
}

export class SessionWorker implements SharedSession {
  private readonly child: ChildProcess;
  private readonly nonce = newNonce();
  private readonly markers: MarkerFilter;
  private readonly sshStderr = new TailBuffer();
  private isReady = false;
  private isGone = false;
  private isStopped = false;
  private client: WorkerClient | undefined;
  private onReady: ((ready: boolean) => void) | undefined;
  private onReport: ((marker: WaiterReport) => void) | undefined;
  /** When it last finished a command (or started). */
  private idleSince = performance.now();
  /** Settles once the client process has exited and Node has released its handles. */
  readonly exited: Promise<void>;

  constructor(
    host: ProcessHost,
    private readonly events: WorkerEvents,
  ) {
    const command = loginShellCommand(sessionWorkerScript(this.nonce));
    // Detached like every client: the application, not the terminal's Ctrl-C, decides when it stops.
    this.child = spawn(host.sshPath, [...host.clientArgs, "-T", "--", host.target.host, command], {
      stdio: ["pipe", "pipe", "pipe"],
      env: host.env,
      detached: true,
    });
    const child = this.child;
    this.markers = new MarkerFilter(this.nonce, (marker) => this.report(marker));
    child.stderr!.pipe(this.markers);
    this.markers.on("data", (chunk: Buffer) => {
      const current = this.client;
      if (current && !current.stderrEnded) current.stderr.write(chunk);
      else this.sshStderr.append(chunk);
    });
    // A command's stdout not read fast enough holds the session's back; its end lets it go (an ended stream never
    // drains, and the next command's output has a reader of its own).
    let pausedFor: WorkerClient | undefined;
    const resume = () => {
      pausedFor = undefined;
      child.stdout!.resume();
    };
    const output = new WorkerOutputReader({
      data: (chunk) => {
        const current = this.client;
        if (!current) return this.broken();
        if (!current.stdout.write(chunk) && pausedFor === undefined) {
          pausedFor = current;
          child.stdout!.pause();
          current.stdout.once("drain", () => {
            if (pausedFor === current) resume();
          });
        }
      },
      end: () => {
        const current = this.client;
        if (!current) return this.broken();
        if (pausedFor === current) resume();
        current.stdoutEnded();
      },
      error: () => this.broken(),
    });
    child.stdout!.on("data", (chunk: Buffer) => output.write(chunk));
    child.stdin!.on("error", () => undefined);
    child.on("error", (error) => this.sshStderr.append(Buffer.from(`ssh: ${error.message}\n`)));
    this.exited = new Promise((resolve) => child.once("close", () => setImmediate(() => setImmediate(resolve))));
    child.once("close", (code: number | null) => {
      this.isGone = true;
      const ready = this.onReady;
      this.onReady = undefined;
      ready?.(false);
      this.client?.end(code ?? 255);
      this.events.gone(this, { unready: !this.isReady, stopped: this.isStopped, code, sshStderr: this.sshStderr.toString() });
    });
  }

  /** Running, and no command holds it. */
  get idle(): boolean {
    return !this.isGone && !this.isStopped && this.client === undefined && this.onReport === undefined;
  }

  /**
   * Idle and sure to read a command written now: its waiter leaves on its own after `SESSION_WORKER_IDLE_SECONDS`
   * without one, so a worker idle for half of that gets none.
   */
  get fresh(): boolean {
    return this.idle && performance.now() - this.idleSince < (SESSION_WORKER_IDLE_SECONDS * 1000) / 2;
  }

  /** The worker's local pid (diagnostics and tests). */
  get pid(): number | undefined {
    return this.child.pid;
  }

  /** `SharedSession.take`: ready at once when the worker is, else once it reports ready (or `false` if it dies). */
  take(onReport: (marker: WaiterReport) => void, ready: (ready: boolean) => void): void {
    if (this.isGone || this.isStopped || this.onReport !== undefined) {
      ready(false);
      return;
    }
    this.onReport = onReport;
    if (this.isReady) ready(true);
    else this.onReady = ready;
  }

  /** `SharedSession.handOver`: the process's side, once `take` said ready. */
  handOver(): TakenSession {
    const client = new WorkerClient(this, this.child.stdin!);
    this.client = client;
    return { child: client as unknown as ChildProcess, markers: client.stderr };
  }

  /** Not needed any more: an idle worker reads the end of its stdin and exits; a busy one is killed. */
  stop(): Promise<void> {
    if (!this.isStopped) {
      this.isStopped = true;
      if (this.client || this.onReport) this.child.kill("SIGTERM");
      else this.child.stdin!.end();
    }
    return this.exited;
  }

  /** Kill the client: the channel's end reaches the worker, which stops its command (TERM, then KILL) and exits. */
  kill(): void {
    this.isStopped = true;
    this.child.kill("SIGTERM");
  }

  /** The command's client is over (its report and output are in, and its done frame is written). */
  released(client: WorkerClient): void {
    if (this.client !== client) return;
    this.client = undefined;
    this.onReport = undefined;
    this.idleSince = performance.now();
    if (!this.isGone && !this.isStopped) this.events.idle(this);
  }

  private report(marker: WaiterReport): void {
    if (marker.kind === "ready") {
      this.isReady = true;
      const ready = this.onReady;
      this.onReady = undefined;
      ready?.(true);
      return;
    }
    if (marker.kind === "server") return;
    if (marker.kind === "pid") this.client?.started();
    this.onReport?.(marker);
    if (marker.kind === "exit" || marker.kind === "signal") this.client?.reported(marker.kind === "exit" ? marker.code : 128 + marker.number);
  }

  /** Output outside the protocol: the session cannot be trusted with a command's output. */
  private broken(): void {
    this.sshStderr.append(Buffer.from("tunnel: the session worker's stdout is not its frames\n"));
    this.kill();
  }
}

/**
 * One command's view of a worker, as a process sees a mux client: its stdin writes into the worker's (ending it
 * writes the done frame and leaves the session open), `kill()` ends the worker, and `close` comes once the command's
 * stdout has ended and its report is in (or the worker is gone).
 */
class WorkerClient extends SessionClient {
  override readonly stdin: Writable;
  override readonly stdout = new PassThrough();
  private stdoutClosed = false;
  private stdinFinished = false;
  private gone = false;
  private hasStarted = false;

  constructor(
    private readonly worker: SessionWorker,
    channel: Writable,
  ) {
    super();
    let waiting: (() => void) | undefined;
    this.stdin = new Writable({
      write: (chunk: Buffer, _encoding, callback) => {
        if (this.gone || channel.writableEnded || channel.write(chunk)) callback();
        else {
          waiting = callback;
          channel.once("drain", () => {
            waiting = undefined;
            callback();
          });
        }
      },
    });
    this.stdin.once("finish", () => {
      this.stdinFinished = true;
      this.maybeRelease();
    });
    this.once("gone", () => waiting?.());
  }

  /** The worker's end frame: the command's stdout is complete. */
  stdoutEnded(): void {
    if (this.stdoutClosed) return;
    this.stdoutClosed = true;
    this.stdout.end();
    this.stdoutDone();
  }

  /** The worker reported the command's group: it runs. */
  started(): void {
    this.hasStarted = true;
  }

  /** The worker is gone. */
  end(code: number): void {
    this.gone = true;
    this.emit("gone");
    if (!this.stdoutClosed) {
      this.stdoutClosed = true;
      this.stdout.end();
    }
    // Gone before the command started (it left idle as the command was on its way, or the master went): the command
    // never ran, and ends as a session that could not start would (ssh's 255), never as the login shell's refusal.
    this.sessionEnded(this.hasStarted ? code : 255);
  }

  override kill(): boolean {
    this.worker.kill();
    return true;
  }

  protected override closed(): void {
    // Normally the process has written the done frame on the report; if it has not, the command is over all the same.
    if (!this.stdin.writableEnded) this.stdin.end(STDIN_DONE_FRAME);
    this.maybeRelease();
  }

  private maybeRelease(): void {
    if (this.exitCode !== null && this.stdinFinished && !this.gone) this.worker.released(this);
  }
}
