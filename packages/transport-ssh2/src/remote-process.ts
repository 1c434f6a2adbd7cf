import { PassThrough, Writable } from "node:stream";
import {
  AbortError,
  ConnectError,
  ValidationError,
  inOwnProcessGroup,
  loginShellCommand,
  type ExitStatus,
  type RemoteProcess,
  type SpawnRequest,
  type Target,
  type TunnelError,
} from "@tunnel-sh/core";
import type { Client, ClientChannel, PseudoTtyOptions } from "ssh2";
import { normalizeError } from "./normalize-error.js";

/** ssh2 keeps the channel's sending state here; its typings leave it `unknown`. */
interface ChannelState {
  readonly outgoing: { readonly state: string; readonly id: number };
}

function outgoing(channel: ClientChannel): ChannelState["outgoing"] {
  return (channel as unknown as ChannelState).outgoing;
}

/** What a remote process needs from its connection. */
export interface ProcessHost {
  readonly client: Client;
  readonly target: Target;
  readonly secrets: readonly (string | undefined)[];
  /** Set once the connection is closed or lost. */
  readonly closedError: TunnelError | undefined;
  /** Milliseconds between SIGTERM and SIGKILL when a request's signal aborts. */
  readonly killGraceMs: number;
  /** The server's `signal` requests reach only the session's pid (dropbear): run commands in their own group. */
  readonly signalsOnlySessionPid: boolean;
  track(process: Ssh2RemoteProcess): void;
  /** A promise to wait for before opening the channel (another channel is giving its slot back), if any. */
  beforeOpen(): Promise<void> | undefined;
  /** This process's channel is closed; its server-side slot frees up shortly. */
  channelClosed(): void;
  untrack(process: Ssh2RemoteProcess): void;
}

/** Signals the SSH protocol can carry (RFC 4254 §6.10), without the `SIG` prefix. */
const SSH_SIGNALS = new Set(["ABRT", "ALRM", "FPE", "HUP", "ILL", "INT", "KILL", "PIPE", "QUIT", "SEGV", "TERM", "USR1", "USR2"]);

/** `TERM`, `sigterm`, `SIGTERM` → `SIGTERM`. */
export function normalizeSignalName(signal: string): string {
  const upper = signal.toUpperCase();
  return upper.startsWith("SIG") ? upper : `SIG${upper}`;
}

function deferred<T>(): { promise: Promise<T>; resolve: (value: T) => void; reject: (error: unknown) => void } {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((onResolve, onReject) => {
    resolve = onResolve;
    reject = onReject;
  });
  // A caller that awaits only one of `started`/`exit` must not crash the process with an unhandled rejection.
  promise.catch(() => {});
  return { promise, resolve, reject };
}

/** Bytes of a command in one exec request: well inside the 256 KiB packets OpenSSH accepts, with room for framing. */
const MAX_EXEC_REQUEST_BYTES = 192 * 1024;

function ptyOptions(pty: SpawnRequest["pty"]): PseudoTtyOptions | undefined {
  if (pty === undefined || pty === false) return undefined;
  if (pty === true) return { term: "xterm", rows: 24, cols: 80 };
  return { term: pty.term ?? "xterm", rows: pty.rows ?? 24, cols: pty.cols ?? 80 };
}

type Phase = "opening" | "running" | "done";

/** One remote process on one SSH `session` channel. */
export class Ssh2RemoteProcess implements RemoteProcess {
  readonly stdin: Writable;
  readonly stdout = new PassThrough();
  readonly stderr = new PassThrough();
  readonly started: Promise<void>;
  readonly exit: Promise<ExitStatus>;

  private readonly startedDeferred = deferred<void>();
  private readonly exitDeferred = deferred<ExitStatus>();
  private phase: Phase = "opening";
  private channel: ClientChannel | undefined;
  private status: ExitStatus | undefined;
  /** The server sent EOF on the channel: all of stdout has arrived. */
  private outputEnded = false;
  private abortError: AbortError | undefined;
  private readonly timers = new Set<NodeJS.Timeout>();
  private removeAbortListener: (() => void) | undefined;

  constructor(
    private readonly host: ProcessHost,
    request: SpawnRequest,
  ) {
    this.started = this.startedDeferred.promise;
    this.exit = this.exitDeferred.promise;
    this.stdin = this.createStdin();

    const signal = request.signal;
    if (signal?.aborted) {
      this.abortError = new AbortError("the command was aborted before it started", { target: host.target });
      this.fail(this.abortError);
      return;
    }
    if (host.closedError) {
      this.fail(host.closedError);
      return;
    }
    if (signal) {
      const onAbort = (): void => this.onAbort();
      signal.addEventListener("abort", onAbort, { once: true });
      this.removeAbortListener = () => signal.removeEventListener("abort", onAbort);
    }
    host.track(this);
    const wait = host.beforeOpen();
    // One tick later at least: a caller that ends stdin right after spawn (no input, the usual case) is seen by then.
    if (wait) void wait.then(() => this.open(request));
    else process.nextTick(() => this.open(request));
  }

  private open(request: SpawnRequest): void {
    if (this.phase !== "opening") return; // aborted or lost while waiting for a slot
    if (this.abortError) {
      this.fail(this.abortError);
      return;
    }
    const host = this.host;
    const pty = ptyOptions(request.pty);
    let line: string;
    try {
      // The prepared script goes to `/bin/sh` through a line every login shell (fish and tcsh too) parses alike.
      line = loginShellCommand(pty || !host.signalsOnlySessionPid ? request.command : inOwnProcessGroup(request.command));
      if (!pty && this.noInput()) {
        // stdin ended before anything was written: the command reads /dev/null (as with `ssh -n`), so no EOF packet
        // follows the exec request — one packet less per command. Every login shell parses the redirect alike.
        line += " </dev/null";
        this.stdinDone = true;
        this.rejectPending();
      }
    } catch (error) {
      this.fail(error);
      return;
    }
    const size = Buffer.byteLength(line, "utf8");
    if (size > MAX_EXEC_REQUEST_BYTES) {
      // sshd drops the whole connection on an oversize packet ("Bad packet length"), and every other channel with it.
      this.fail(
        new ValidationError("command", `is ${size} bytes, more than one SSH exec request carries safely (${MAX_EXEC_REQUEST_BYTES})`, {
          target: host.target,
        }),
      );
      return;
    }
    try {
      const callback = (error: Error | undefined, channel: ClientChannel): void => this.onOpen(error, channel);
      if (pty) host.client.exec(line, { pty }, callback);
      else host.client.exec(line, callback);
    } catch (error) {
      // ssh2 throws "Not connected" synchronously once the socket is gone.
      this.fail(normalizeError(error, { phase: "channel", target: host.target, secrets: host.secrets }));
    }
  }

  /** Stop the remote process group with an SSH `signal` request. Resolves once the request was sent. */
  async kill(signal = "SIGTERM"): Promise<void> {
    const name = normalizeSignalName(signal).slice(3);
    if (!SSH_SIGNALS.has(name)) {
      throw new ValidationError("signal", `unsupported signal "${signal}"; one of ${[...SSH_SIGNALS].map((s) => `SIG${s}`).join(", ")}`);
    }
    if (this.phase === "opening") {
      try {
        await this.started;
      } catch {
        return;
      }
    }
    this.sendSignal(name);
  }

  /** The connection closed: settle now, since an unread channel never emits `close`. */
  connectionLost(error: TunnelError): void {
    if (this.phase === "done") return;
    if (this.status && this.outputEnded && !this.abortError) {
      // The exit status and the end of the output (EOF) arrived before the loss: nothing is missing. sshd may send
      // the exit status before the last output, so a status alone does not mean the output is complete.
      this.finish();
      return;
    }
    this.fail(this.abortError ?? error);
  }

  private sendSignal(name: string): void {
    const channel = this.channel;
    if (!channel || this.phase !== "running") return;
    const state = outgoing(channel).state;
    try {
      if (state === "open") {
        channel.signal(name);
      } else if (state === "eof") {
        // ssh2's `signal()` refuses once EOF was sent on stdin (`outgoing.state === "eof"`), yet the
        // channel is still open and sshd still honours the request; send it through the protocol directly.
        const internals = channel as unknown as { _client?: { _protocol?: { signal?: (id: number, name: string) => void } } };
        internals._client?._protocol?.signal?.(outgoing(channel).id, name);
      }
    } catch {
      // The connection went away meanwhile; `connectionLost` settles the process.
    }
  }

  private onAbort(): void {
    if (this.phase === "done") return;
    this.abortError = new AbortError("the command was aborted", { target: this.host.target });
    if (this.phase === "opening") return; // onOpen stops it as soon as the channel exists
    this.stopAfterAbort();
  }

  private stopAfterAbort(): void {
    this.sendSignal("TERM");
    const grace = this.host.killGraceMs;
    this.timer(grace, () => {
      this.sendSignal("KILL");
      this.timer(grace, () => {
        // Still no close from the server: give up on the channel, keep the connection.
        try {
          this.channel?.close();
        } catch {
          // ignored: the connection is gone and connectionLost settles
        }
        this.fail(this.abortError ?? new AbortError("the command was aborted", { target: this.host.target }));
      });
    });
  }

  private timer(ms: number, run: () => void): void {
    const handle = setTimeout(() => {
      this.timers.delete(handle);
      run();
    }, ms);
    handle.unref();
    this.timers.add(handle);
  }

  private onOpen(error: Error | undefined, channel: ClientChannel): void {
    if (this.phase !== "opening") {
      // Settled meanwhile (connection lost): do not leave the command running.
      if (!error) {
        try {
          channel.signal("KILL");
          channel.close();
        } catch {
          // ignored
        }
        this.host.channelClosed();
      }
      return;
    }
    if (error) {
      this.fail(normalizeError(error, { phase: "channel", target: this.host.target, secrets: this.host.secrets }));
      return;
    }
    this.channel = channel;
    this.phase = "running";
    let stderrEnded = false;
    let channelClosed = false;
    const maybeFinish = (): void => {
      if (stderrEnded && channelClosed) this.onChannelClosed();
    };
    channel.on("exit", (code: number | null, signalName?: string) => {
      this.recordExit(code, signalName);
    });
    channel.on("close", (code?: number | null, signalName?: string) => {
      if (code !== undefined) this.recordExit(code, signalName);
      channelClosed = true;
      maybeFinish();
    });
    channel.on("error", () => {
      // Stream errors surface as a closed channel or a lost connection.
    });
    channel.once("end", () => {
      this.outputEnded = true;
    });
    channel.stderr.once("end", () => {
      stderrEnded = true;
      maybeFinish();
    });
    channel.pipe(this.stdout);
    channel.stderr.pipe(this.stderr);
    this.startedDeferred.resolve();
    if (this.abortError) this.stopAfterAbort();
    // Writes made before the channel opened are waiting for this.
    this.flushPending();
  }

  private recordExit(code: number | null | undefined, signalName: string | undefined): void {
    if (this.status) return;
    if (typeof code === "number") this.status = { exitCode: code, signal: null };
    else if (signalName) this.status = { exitCode: null, signal: normalizeSignalName(signalName) };
  }

  private onChannelClosed(): void {
    if (this.phase === "done") return;
    if (this.abortError) {
      this.fail(this.abortError);
      return;
    }
    if (!this.status) {
      // Closed without exit-status/exit-signal: the server dropped the session (e.g. its process was killed).
      const lost =
        this.host.closedError ??
        new ConnectError("the session closed without an exit status", {
          lost: true,
          phase: "exec",
          target: this.host.target,
        });
      this.fail(lost);
      return;
    }
    this.finish();
  }

  private finish(): void {
    if (this.phase === "done") return;
    this.phase = "done";
    this.cleanup();
    this.endOutputs();
    this.exitDeferred.resolve(this.status ?? { exitCode: null, signal: null });
  }

  private fail(error: unknown): void {
    if (this.phase === "done") return;
    const wasOpening = this.phase === "opening";
    this.phase = "done";
    this.cleanup();
    this.endOutputs();
    if (wasOpening) this.startedDeferred.reject(error);
    this.exitDeferred.reject(error);
  }

  private cleanup(): void {
    for (const handle of this.timers) clearTimeout(handle);
    this.timers.clear();
    this.removeAbortListener?.();
    this.removeAbortListener = undefined;
    this.host.untrack(this);
    if (this.channel) this.host.channelClosed();
    this.rejectPending();
  }

  private endOutputs(): void {
    if (!this.stdout.writableEnded) {
      if (this.channel) this.channel.unpipe(this.stdout);
      this.stdout.end();
    }
    if (!this.stderr.writableEnded) {
      if (this.channel) this.channel.stderr.unpipe(this.stderr);
      this.stderr.end();
    }
  }

  // stdin: writes wait for the channel; `end()` sends EOF (never a channel close, so kill() keeps working).
  private pending: Array<{ chunk: Buffer | undefined; callback: (error?: Error | null) => void }> = [];
  /** The command's stdin is /dev/null on the host: nothing more goes to the channel. */
  private stdinDone = false;

  /** stdin was ended, with nothing written, before the channel opened. */
  private noInput(): boolean {
    return this.pending.length === 1 && this.pending[0]?.chunk === undefined;
  }

  private createStdin(): Writable {
    return new Writable({
      write: (chunk: Buffer, _encoding, callback) => this.stdinWrite(chunk, callback),
      final: (callback) => this.stdinWrite(undefined, callback),
    });
  }

  private stdinWrite(chunk: Buffer | undefined, callback: (error?: Error | null) => void): void {
    if (this.phase === "opening") {
      this.pending.push({ chunk, callback });
      return;
    }
    const channel = this.channel;
    // After the process ended (or never started) input has nowhere to go; it is dropped quietly
    // rather than raising an error event nobody listens to.
    if (!channel || this.phase === "done" || this.stdinDone || outgoing(channel).state !== "open") {
      callback();
      return;
    }
    if (chunk === undefined) {
      channel.eof();
      callback();
      return;
    }
    channel.write(chunk, () => callback());
  }

  private flushPending(): void {
    const queued = this.pending;
    this.pending = [];
    for (const { chunk, callback } of queued) this.stdinWrite(chunk, callback);
  }

  private rejectPending(): void {
    const queued = this.pending;
    this.pending = [];
    for (const { callback } of queued) callback();
  }
}
