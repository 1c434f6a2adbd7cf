/**
 * One tunnel connection = one ControlMaster. Every exec and transfer is a mux client of that master and never
 * opens a connection of its own.
 */
import { PassThrough } from "node:stream";
import {
  AbortError,
  ConnectError,
  loginShellCommand,
  type Connection,
  type ConnectionCapabilities,
  type DownloadRequest,
  type RemoteProcess,
  type SpawnRequest,
  type Target,
  type TunnelError,
  type UploadRequest,
} from "@tunnel-sh/core";
import { sshEnvironment } from "./environment.js";
import type { Master } from "./master.js";
import { clientArgs, type ResolvedOptions } from "./options.js";
import type { ProcessFiles, ProcessHost, TrackedProcess } from "./process-host.js";
import { OpenSshRemoteProcess } from "./remote-process.js";
import { runSsh } from "./run-ssh.js";
import { DROPBEAR_MAX_LOGIN_LINE_BYTES, WRAPPER_BYTES } from "./session-command.js";
import { SessionWorker, type WorkerEnd } from "./session-worker.js";
import { StandbySession } from "./standby-session.js";
import { downloadFile, uploadFile } from "./transfer.js";

/** Commands longer than this (in UTF-16 units) are not handed to a standby session: they go as a client's argument. */
const STANDBY_COMMAND_LIMIT = 16 * 1024;

/** How long `close()` waits for its workers to end before it stops the master under them. */
const WORKER_STOP_GRACE_MS = 1000;

/** Settles when `promise` does or `ms` have passed, whichever comes first. */
async function within(promise: Promise<void>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([promise, new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)))]);
  clearTimeout(timer);
}

export class OpenSshConnection implements Connection {
  readonly transport = "openssh";
  readonly capabilities: ConnectionCapabilities = { pty: true, signals: true, transfer: true };
  readonly maxChannels: number;
  /** `Connection.maxCommandBytes`: known short on dropbear (its 9 000 bytes, less this transport's wrapper). */
  readonly maxCommandBytes?: number;
  private isClosed = false;
  private closing: Promise<void> | undefined;
  private readonly listeners = new Set<(error?: TunnelError) => void>();
  private readonly processes = new Set<TrackedProcess>();
  private closeError: TunnelError | undefined;
  private readonly host: ProcessHost;
  /** A session ready for the next command (`standby-session.ts`), at most one. */
  private standby: StandbySession | undefined;
  /** Framed processes started so far: a standby is kept only once a connection runs more than one. */
  private framedSpawns = 0;
  private standbyWorks = true;
  /** Session workers (`session-worker.ts`), idle or running a command; the idle ones in `idleWorkers`. */
  private readonly workers = new Set<SessionWorker>();
  private readonly idleWorkers: SessionWorker[] = [];
  /** Framed commands go to workers: perl waits (`exactExitStatus`) and there are channels to spare for them. */
  private workersWork: boolean;
  /** Workers in a row that ended before they were ready. */
  private workerFailures = 0;
  /** Processes on a session of their own (a mux client, the master's session): with the workers, the sessions open. */
  private ownSessions = 0;
  /** Workers stopped and not yet exited, with the promise of their exit: their sessions are still open. */
  private readonly leaving = new Map<SessionWorker, Promise<void>>();
  /** The server has refused a session on this connection: its limit is below `maxChannels`. */
  private refusedOnce = false;

  constructor(
    readonly target: Target,
    private readonly master: Master,
    private readonly options: ResolvedOptions,
  ) {
    const dropbear = master.session?.server === "dropbear";
    // dropbear, reached through an OpenSSH ControlMaster, closes some of several sessions that start at once before
    // they report how they ended, and some of those sessions' commands have already run (seen with dropbear 2022.83
    // and OpenSSH 9.2: a tenth of 400 sessions started 8 at a time, none one at a time). A lost status cannot be told
    // from a command that never ran, so such a connection runs one session at a time; the pool opens more connections.
    this.maxChannels = dropbear ? 1 : options.maxChannels;
    if (dropbear) this.maxCommandBytes = DROPBEAR_MAX_LOGIN_LINE_BYTES - WRAPPER_BYTES;
    // With one or two channels a worker would hold a channel a transfer or pty may need at once.
    this.workersWork = options.exactExitStatus && this.maxChannels >= 3;
    master.onExit((error) => {
      if (error) this.markLost(error);
    });
    // Built once per connection: every exec reuses them.
    const env = sshEnvironment(options.env);
    const args = clientArgs(options, target, master.socketPath);
    this.host = {
      target,
      sshPath: options.sshPath,
      env,
      killGraceMs: options.killGraceMs,
      exactExitStatus: options.exactExitStatus,
      singleSession: options.maxChannels === 1,
      maxLoginLineBytes: dropbear ? DROPBEAR_MAX_LOGIN_LINE_BYTES : undefined,
      clientArgs: args,
      masterLost: () => this.masterLost(),
      reportLost: (error) => this.markLost(error),
      runRaw: async (command) => {
        const result = await runSsh(options, [...args, "-T", "--", target.host, loginShellCommand(command)], {
          timeoutMs: 10_000,
        });
        return result.code;
      },
      track: (child) => this.processes.add(child),
      untrack: (child) => {
        this.processes.delete(child);
        this.prepareStandby();
      },
      refused: () => this.sessionRefused(),
    };
  }

  get closed(): boolean {
    return this.isClosed;
  }

  /** The ControlMaster's local pid (diagnostics and tests). */
  get masterPid(): number | undefined {
    return this.master.pid;
  }

  /** A session is ready for the next command, its waiter started ahead of it (diagnostics and tests). */
  get standbyReady(): boolean {
    return this.standby?.ready === true;
  }

  /** Session workers running, idle or busy (diagnostics and tests). */
  get workerCount(): number {
    return this.workers.size;
  }

  /** The control socket's path (diagnostics and tests). */
  get controlPath(): string {
    return this.master.socketPath;
  }

  spawn(request: SpawnRequest): RemoteProcess {
    return this.spawnWithFiles(request, {});
  }

  /** An exec whose stdin or stdout is a local file the master reads or writes itself (transfers). */
  spawnWithFiles(request: SpawnRequest, files: ProcessFiles): RemoteProcess {
    if (this.isClosed) return failedProcess(this.closeError ?? closedError(this.target));
    const framed = files.stdin === undefined && files.stdout === undefined && (request.pty === undefined || request.pty === false);
    const fits = request.command.length <= STANDBY_COMMAND_LIMIT;
    if (framed) this.framedSpawns++;
    // The master's own session is the first command's when that one can use it; otherwise it is let go at once.
    if (this.master.session?.available === true) {
      if (framed && fits) return this.ownSession(new OpenSshRemoteProcess(this.host, request, files, undefined, this.master.session));
      this.master.session.release();
    }
    // Long commands go as a client's argument, which checks them against the argument limit the host's /bin/sh has.
    if (framed && fits && this.workersWork) {
      const worker = this.freshWorker() ?? (this.workers.size + this.ownSessions < this.maxChannels ? this.startWorker() : undefined);
      if (worker) return new OpenSshRemoteProcess(this.host, request, files, undefined, worker);
    }
    let standby: StandbySession | undefined;
    // A ready session is always taken; one still on its way only when a session of its own would be one more than
    // the connection's channels (it holds one of them), never spawning past the limit.
    const available = this.standby?.available === true && fits;
    if (framed && available && (this.standby?.ready === true || this.processes.size + 2 > this.maxChannels)) {
      standby = this.standby;
      this.standby = undefined;
    }
    // Idle workers hold sessions the pool counts as free: a session of this process's own waits for one to close.
    return this.ownSession(new OpenSshRemoteProcess(this.host, request, files, standby, undefined, standby ? undefined : this.makeRoom()));
  }

  /** Count `process` among the sessions of their own while it runs. */
  private ownSession(process: OpenSshRemoteProcess): OpenSshRemoteProcess {
    this.ownSessions++;
    const done = () => this.ownSessions--;
    process.exit.then(done, done);
    return process;
  }

  /**
   * Stop idle workers until one more session fits in the connection's channels; settles once they have exited. After
   * a refused session the server's limit is unknown (below the channels), so it also waits for every worker on its way
   * out: their sessions are open until then.
   */
  private makeRoom(): Promise<void> | undefined {
    const stopping: Promise<void>[] = [];
    while (this.workers.size + this.leaving.size + this.ownSessions + 1 > this.maxChannels && this.idleWorkers.length > 0) {
      stopping.push(this.retire(this.idleWorkers.pop()!));
    }
    if (this.leaving.size > 0 && (this.refusedOnce || this.workers.size + this.leaving.size + this.ownSessions + 1 > this.maxChannels)) {
      stopping.push(...this.leaving.values());
    }
    return stopping.length > 0 ? Promise.all(stopping).then(() => undefined) : undefined;
  }

  /** Stop `worker` (idle): its session stays counted until it has exited. */
  private retire(worker: SessionWorker): Promise<void> {
    this.workers.delete(worker);
    const gone = worker.stop().then(() => {
      this.leaving.delete(worker);
    });
    this.leaving.set(worker, gone);
    return gone;
  }

  /** The idle worker that finished a command last, if one is sure to read a command now; older idle ones are stopped. */
  private freshWorker(): SessionWorker | undefined {
    for (let worker = this.idleWorkers.pop(); worker; worker = this.idleWorkers.pop()) {
      if (worker.fresh) return worker;
      void this.retire(worker);
    }
    return undefined;
  }

  /** A new worker, for the command about to take it. */
  private startWorker(): SessionWorker {
    const worker = new SessionWorker(this.host, {
      idle: (idle) => {
        if (this.isClosed || !this.workersWork) {
          void this.retire(idle);
          return;
        }
        this.workerFailures = 0;
        this.idleWorkers.push(idle);
      },
      gone: (gone, end) => this.workerGone(gone, end),
    });
    this.workers.add(worker);
    return worker;
  }

  private workerGone(worker: SessionWorker, end: WorkerEnd): void {
    this.workers.delete(worker);
    const at = this.idleWorkers.indexOf(worker);
    if (at !== -1) this.idleWorkers.splice(at, 1);
    if (!end.unready || end.stopped || this.isClosed) return;
    // ssh exited 0 without a worker: the host has no perl, or its login shell runs no such script. Otherwise (a
    // refused session, a master going away) give up after a second failure in a row.
    this.workerFailures++;
    if (end.code === 0 || this.workerFailures >= 2 || /open failed|refused/i.test(end.sshStderr)) this.stopWorkers();
  }

  /** The server refused a session: its limit is below the connection's channels, so no session is held idle. */
  private sessionRefused(): void {
    this.refusedOnce = true;
    this.stopWorkers();
  }

  /** No more workers on this connection: the idle ones stop, the busy ones once their command is over. */
  private stopWorkers(): void {
    this.workersWork = false;
    for (const worker of this.idleWorkers.splice(0)) void this.retire(worker);
  }

  /**
   * Keep a session ready for the next command once the connection has shown it runs one after another (a second
   * command; a connection of one command, as in a fan-out, never pays for one), while a channel is left for it
   * beside the running processes and one more.
   */
  private prepareStandby(): void {
    if (this.isClosed || this.workersWork || this.leaving.size > 0 || this.standby || !this.standbyWorks || this.maxChannels <= 2 || this.framedSpawns < 2)
      return;
    if (this.processes.size + 2 > this.maxChannels) return;
    const standby = new StandbySession(this.host, (unready) => {
      if (this.standby === standby) this.standby = undefined;
      // The host never got a waiter ready (a restricted login shell, a refused session): do not try again.
      if (unready) this.standbyWorks = false;
    });
    this.standby = standby;
  }

  async upload(request: UploadRequest): Promise<void> {
    if (this.isClosed) throw this.closeError ?? closedError(this.target);
    return uploadFile(this, request);
  }

  async download(request: DownloadRequest): Promise<void> {
    if (this.isClosed) throw this.closeError ?? closedError(this.target);
    return downloadFile(this, request);
  }

  async ping(options: { readonly signal?: AbortSignal } = {}): Promise<void> {
    const aborted = () => new AbortError("the ping was aborted", { phase: "connect", target: this.target });
    if (options.signal?.aborted) throw aborted();
    if (this.isClosed) throw this.closeError ?? closedError(this.target);
    const answered = await this.master.check(options.signal);
    // An abort before the answer is delivered wins, even when the check had already exited (a kill of an exited
    // check does nothing); and when the abort killed the check, not the master, the connection is not lost.
    if (options.signal?.aborted) throw aborted();
    if (answered) return;
    const lost = await this.masterLost();
    const error = lost ?? new ConnectError(`the ControlMaster for ${this.target.host} does not answer`, { lost: true, target: this.target });
    this.markLost(error);
    throw error;
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      const wasClosed = this.isClosed;
      this.isClosed = true;
      const standbyGone = this.standby?.stop();
      const workersGone = this.stopAllWorkers();
      for (const child of this.processes) child.connectionClosed();
      // An idle worker ends on the end of its stdin, on the host first: let it go before the master does, briefly.
      await within(workersGone, WORKER_STOP_GRACE_MS);
      await this.master.stop();
      // The standby and worker clients exit with the master at the latest: wait for them, so no process of this
      // connection is left.
      await standbyGone;
      await workersGone;
      if (!wasClosed) this.emitClose(undefined);
    })();
    return this.closing;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  onClose(listener: (error?: TunnelError) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** After a mux client lost its session: has the master gone (or is it about to)? */
  private async masterLost(): Promise<TunnelError | undefined> {
    if (this.closeError) return this.closeError;
    if (this.isClosed) return closedError(this.target);
    // A dropped link ends the master right after its sessions; give it a moment to exit.
    if (await this.master.waitExit(300)) return this.closeError ?? this.master.exitError();
    if (await this.master.check()) return undefined;
    const error = this.master.exitError();
    this.markLost(error);
    return error;
  }

  private markLost(error: TunnelError): void {
    if (this.isClosed) return;
    this.isClosed = true;
    this.closeError = error;
    const standbyGone = this.standby?.stop();
    const workersGone = this.stopAllWorkers();
    for (const child of this.processes) child.connectionClosed();
    // The master may still be running (stale); stop it and remove the folder in the background.
    this.closing ??= this.master
      .stop()
      .then(() => Promise.all([standbyGone, workersGone]))
      .then(() => undefined);
    this.emitClose(error);
  }

  /** Every worker, idle or busy (a busy worker's process is stopped with it). */
  private stopAllWorkers(): Promise<void> {
    this.workersWork = false;
    this.idleWorkers.length = 0;
    const gone = [...[...this.workers].map((worker) => worker.stop()), ...this.leaving.values()];
    this.workers.clear();
    return Promise.all(gone).then(() => undefined);
  }

  private emitClose(error: TunnelError | undefined): void {
    for (const listener of [...this.listeners]) {
      try {
        listener(error);
      } catch {
        // a listener's failure is not the connection's
      }
    }
    this.listeners.clear();
  }
}

function closedError(target: Target): ConnectError {
  return new ConnectError(`the connection to ${target.host} is closed`, { lost: true, phase: "channel", target });
}

/** A process that failed before it could start: `spawn()` never throws. */
function failedProcess(error: TunnelError): RemoteProcess {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  stdout.end();
  stderr.end();
  const stdin = new PassThrough();
  stdin.resume();
  const started = Promise.reject(error);
  const exit = Promise.reject(error);
  started.catch(() => undefined);
  exit.catch(() => undefined);
  return { stdin, stdout, stderr, started, exit, kill: async () => undefined };
}
