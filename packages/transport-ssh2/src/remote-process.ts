/**
 * One remote process on one SSH `session` channel, from the channel open to its exit: opening (waiting for a slot,
 * then for the server's answer), running, done. The exec line, stdin and signals have files of their own.
 */
import type { Writable } from "node:stream";
import {
  AbortError,
  ConnectError,
  ValidationError,
  type ExitStatus,
  type RemoteProcess,
  type SpawnRequest,
  type Target,
  type TunnelError,
} from "@tunnel-sh/core";
import { escalateKill } from "@tunnel-sh/core/internal";
import type { Client, ClientChannel } from "ssh2";
import { ChannelOutput } from "./channel-output.js";
import { SSH_SIGNALS, normalizeSignalName, sendChannelSignal } from "./channel-signals.js";
import { execLine, ptyOptions } from "./exec-line.js";
import { normalizeError } from "./normalize-error.js";
import { ChannelStdin } from "./process-stdin.js";

export { normalizeSignalName } from "./channel-signals.js";

/** What a remote process needs from its connection. */
export interface ProcessHost {
  readonly client: Client;
  readonly target: Target;
  readonly secrets: readonly (string | undefined)[];
  /** Set once the connection is closed or lost. */
  readonly closedError: TunnelError | undefined;
  /** Milliseconds after SIGTERM (and again after SIGKILL) when a request's signal aborts. */
  readonly killGraceMs: number;
  /** The server's `signal` requests reach only the session's pid (dropbear): run commands in their own group. */
  readonly signalsOnlySessionPid: boolean;
  /** The longest command one exec request may carry to this server. */
  readonly maxExecCommandBytes: number;
  /** Count the process against the connection's channels, from before its open until `untrack`. */
  track(process: Ssh2RemoteProcess): void;
  /** Count a slot the server may still hold for a channel nobody uses any more, until the returned function runs. */
  reserveSlot(): () => void;
  /** A promise to wait for before opening the channel (another channel is giving its slot back), if any. */
  beforeOpen(): Promise<void> | undefined;
  /** This process's channel is closed; its server-side slot frees up shortly. */
  channelClosed(): void;
  untrack(process: Ssh2RemoteProcess): void;
}

function ignore(): void {}

function deferred<T>(): { promise: Promise<T>; resolve: (value: T) => void; reject: (error: unknown) => void } {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((onResolve, onReject) => {
    resolve = onResolve;
    reject = onReject;
  });
  // A caller that awaits only one of `started`/`exit` must not crash the process with an unhandled rejection.
  promise.catch(ignore);
  return { promise, resolve, reject };
}

type Phase = "opening" | "running" | "done";

/** One remote process on one SSH `session` channel. */
export class Ssh2RemoteProcess implements RemoteProcess {
  readonly stdin: Writable;
  readonly stdout = new ChannelOutput();
  readonly stderr = new ChannelOutput();
  readonly started: Promise<void>;
  readonly exit: Promise<ExitStatus>;

  private readonly startedDeferred = deferred<void>();
  private readonly exitDeferred = deferred<ExitStatus>();
  private readonly input = new ChannelStdin();
  private phase: Phase = "opening";
  private channel: ClientChannel | undefined;
  /** The exec request went out and the server has not answered it yet: the server may be opening its channel. */
  private awaitingOpen = false;
  /** Settled before the server answered the open: gives back the slot that open holds there. */
  private releaseOpeningSlot: (() => void) | undefined;
  private status: ExitStatus | undefined;
  /** The server sent EOF on the channel: all of stdout has arrived. */
  private outputEnded = false;
  private abortError: AbortError | undefined;
  private removeAbortListener: (() => void) | undefined;

  constructor(
    private readonly host: ProcessHost,
    request: SpawnRequest,
  ) {
    this.started = this.startedDeferred.promise;
    this.exit = this.exitDeferred.promise;
    this.stdin = this.input.writable;

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
      // Without `once`: the listener is removed when the process settles, and options cost on every command.
      const onAbort = (): void => this.onAbort();
      signal.addEventListener("abort", onAbort);
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
    const host = this.host;
    const pty = ptyOptions(request.pty);
    let line: string;
    try {
      const exec = execLine(request, {
        target: host.target,
        signalsOnlySessionPid: host.signalsOnlySessionPid,
        maxExecCommandBytes: host.maxExecCommandBytes,
        noInput: this.input.noInput,
      });
      line = exec.line;
      if (exec.devNullStdin) this.input.close();
    } catch (error) {
      this.fail(error);
      return;
    }
    try {
      const callback = (error: Error | undefined, channel: ClientChannel): void => this.onOpen(error, channel);
      if (pty) host.client.exec(line, { pty }, callback);
      else host.client.exec(line, callback);
      this.awaitingOpen = true;
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
    try {
      sendChannelSignal(channel, name);
    } catch {
      // The connection went away meanwhile; `connectionLost` settles the process.
    }
  }

  private onAbort(): void {
    if (this.phase === "done") return;
    this.abortError = new AbortError("the command was aborted", { target: this.host.target });
    // Not started yet (waiting for a slot, or for a server that may never answer the open): settle now. A channel
    // that opens later is closed at once (`onOpen`).
    if (this.phase === "opening") this.fail(this.abortError);
    else this.stopAfterAbort();
  }

  /** TERM, KILL after the grace, then give up on the channel (keeping the connection): core's one escalation. */
  private stopAfterAbort(): void {
    void escalateKill({
      send: (signal) => this.sendSignal(signal),
      ended: this.exit,
      graceMs: this.host.killGraceMs,
      abandon: () => {
        // Still no close from the server: give up on the channel, keep the connection.
        try {
          this.channel?.close();
        } catch {
          // ignored: the connection is gone and connectionLost settles
        }
        this.fail(this.abortError ?? new AbortError("the command was aborted", { target: this.host.target }));
      },
    });
  }

  /**
   * A channel the server opened after the process settled: stop its command with the same escalation as an abort.
   * One signal alone is not enough: sshd signals the command's process group, which may not exist yet this early.
   */
  private stopLateChannel(channel: ClientChannel, release: (() => void) | undefined): void {
    const closed = new Promise<void>((resolve) => channel.once("close", () => resolve()));
    channel.on("error", () => {});
    channel.resume();
    channel.stderr.resume();
    void escalateKill({
      send: (signal) => {
        try {
          sendChannelSignal(channel, signal);
        } catch {
          // the connection is gone: nothing runs any more
        }
      },
      ended: closed,
      graceMs: this.host.killGraceMs,
      abandon: () => {
        try {
          channel.close();
        } catch {
          // the connection is gone
        }
      },
    }).finally(() => {
      release?.();
      this.host.channelClosed();
    });
  }

  private onOpen(error: Error | undefined, channel: ClientChannel): void {
    this.awaitingOpen = false;
    if (this.phase !== "opening") {
      // Settled meanwhile (aborted, timed out, connection lost): do not leave the command running.
      const release = this.releaseOpeningSlot;
      this.releaseOpeningSlot = undefined;
      if (error) release?.();
      else this.stopLateChannel(channel, release);
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
    // Stream errors surface as a closed channel or a lost connection.
    channel.on("error", ignore);
    channel.once("end", () => {
      this.outputEnded = true;
    });
    channel.stderr.once("end", () => {
      stderrEnded = true;
      maybeFinish();
    });
    this.stdout.attach(channel);
    this.stderr.attach(channel.stderr);
    this.startedDeferred.resolve();
    // Writes made before the channel opened are waiting for this.
    this.input.attach(channel);
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
    this.removeAbortListener?.();
    this.removeAbortListener = undefined;
    this.host.untrack(this);
    // A channel the server may still open holds its slot there: it stays counted until `onOpen` closes it.
    if (this.awaitingOpen) this.releaseOpeningSlot = this.host.reserveSlot();
    if (this.channel) this.host.channelClosed();
    this.input.close();
  }

  private endOutputs(): void {
    this.stdout.finish();
    this.stderr.finish();
  }
}
