/**
 * The connections a `FakeTransport` makes: scripted pings and transfers, channels refused like sshd's MaxSessions,
 * and drops a test triggers. Their processes are `FakeProcess`es.
 */
import {
  AbortError,
  ChannelError,
  ConnectError,
  TransferError,
  TunnelError,
  type Connection,
  type ConnectionCapabilities,
  type DownloadRequest,
  type RemoteProcess,
  type SpawnRequest,
  type Target,
  type UploadRequest,
} from "@tunnel-sh/core";
import { FakeProcess } from "./fake-process.js";
import type { FakeOutcome, FakeTransport } from "./fake-transport.js";

/** Waits `ms`; rejects with `AbortError` when `signal` aborts first. */
export function wait(ms: number | undefined, signal: AbortSignal | undefined, target: Target): Promise<void> {
  if (signal?.aborted) return Promise.reject(new AbortError(undefined, { target }));
  if (!ms) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const onAbort = () => {
      clearTimeout(timer);
      reject(new AbortError(undefined, { target }));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/** The error running processes get when their connection goes away. */
function lostError(connection: FakeConnection, cause?: unknown, message = "the connection was lost"): TunnelError {
  if (TunnelError.is(cause) && cause.code === "CONNECTION_LOST") return cause;
  return new ConnectError(message, { lost: true, phase: "exec", target: connection.target, cause });
}

export class FakeConnection implements Connection {
  readonly transport: string;
  readonly capabilities: ConnectionCapabilities;
  readonly maxChannels: number;
  readonly #owner: FakeTransport;
  readonly #listeners = new Set<(error?: TunnelError) => void>();
  readonly #running = new Set<FakeProcess>();
  readonly #maxSessions: number;
  #closed = false;
  #refusals = 0;
  #peakChannels = 0;

  constructor(
    owner: FakeTransport,
    /** 1, 2, 3, ... in the order the transport made them. */
    readonly id: number,
    readonly target: Target,
    settings: { readonly maxChannels: number; readonly maxSessions?: number | undefined; readonly capabilities: ConnectionCapabilities },
  ) {
    this.#owner = owner;
    this.transport = owner.name;
    this.maxChannels = settings.maxChannels;
    this.#maxSessions = settings.maxSessions ?? settings.maxChannels;
    this.capabilities = settings.capabilities;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Channels open now (processes spawned and not yet ended). */
  get activeChannels(): number {
    return this.#running.size;
  }

  /** The most channels open at the same time, so far. */
  get peakChannels(): number {
    return this.#peakChannels;
  }

  /** `onClose` listeners registered and not removed (a closed connection has none left). */
  get listenerCount(): number {
    return this.#listeners.size;
  }

  /**
   * Turn `closed` true without telling anyone: no `onClose` listener hears of it, running processes go on. Stands
   * for a transport that missed the loss of its connection.
   */
  closeWithoutNotice(): void {
    this.#closed = true;
  }

  /** The next `count` spawns are refused with `ChannelError({ refused: true })`, as sshd does past MaxSessions. */
  refuseNextSpawns(count = 1): void {
    this.#refusals += count;
  }

  /**
   * Simulate a lost connection: running processes' `exit` rejects with `CONNECTION_LOST` (`error` itself when it
   * has that code), their handlers get `SIGKILL`, and `onClose` listeners get `error` (default: a `CONNECTION_LOST`).
   */
  drop(error?: TunnelError): void {
    if (this.#closed) return;
    const lost = error ?? lostError(this);
    this.#shutDown(lostError(this, lost), lost);
  }

  spawn(request: SpawnRequest): RemoteProcess {
    this.#owner.calls.push({
      type: "spawn",
      target: this.target,
      connection: this.id,
      command: request.command,
      pty: Boolean(request.pty),
    });
    const remote = new FakeProcess(this, request, (signal) =>
      this.#owner.calls.push({ type: "kill", target: this.target, connection: this.id, command: request.command, signal }),
    );
    if (this.#closed) {
      remote.fail(new ConnectError("the connection is closed", { lost: true, phase: "channel", target: this.target }));
    } else if (request.signal?.aborted) {
      remote.fail(new AbortError(undefined, { target: this.target }));
    } else if (this.#refusals > 0 || this.#running.size >= this.#maxSessions) {
      if (this.#refusals > 0) this.#refusals -= 1;
      remote.fail(new ChannelError("the server refused to open a channel", { refused: true, target: this.target }));
    } else {
      this.#running.add(remote);
      this.#peakChannels = Math.max(this.#peakChannels, this.#running.size);
      void remote.exit.then(
        () => this.#running.delete(remote),
        () => this.#running.delete(remote),
      );
      remote.begin(this.#owner.spawnReply(request, this));
    }
    return remote;
  }

  upload(request: UploadRequest): Promise<void> {
    return this.#transfer("upload", request);
  }

  download(request: DownloadRequest): Promise<void> {
    return this.#transfer("download", request);
  }

  /** Log the transfer and play its script; a connection that declares no transfers refuses them, as a transport must. */
  async #transfer(kind: "upload" | "download", request: UploadRequest | DownloadRequest): Promise<void> {
    const { localPath, remotePath } = request;
    this.#owner.calls.push({ type: kind, target: this.target, connection: this.id, localPath, remotePath });
    await this.#outcome(() => {
      if (this.capabilities.transfer) return this.#owner.transferReply(kind, request, this);
      return Promise.reject(new TransferError("this connection declares no transfers (capabilities.transfer is false)", { target: this.target }));
    }, request.signal);
  }

  async ping(options: { readonly signal?: AbortSignal } = {}): Promise<void> {
    this.#owner.calls.push({ type: "ping", target: this.target, connection: this.id });
    await this.#outcome(() => this.#owner.pingReply(this), options.signal);
  }

  async #outcome(reply: () => Promise<FakeOutcome>, signal: AbortSignal | undefined): Promise<void> {
    if (this.#closed) throw new ConnectError("the connection is closed", { lost: true, target: this.target });
    if (signal?.aborted) throw new AbortError(undefined, { target: this.target });
    const outcome = await reply();
    await wait(outcome.delayMs, signal, this.target);
    if (this.#closed) throw new ConnectError("the connection is closed", { lost: true, target: this.target });
    if (outcome.error !== undefined) throw outcome.error;
  }

  async close(): Promise<void> {
    this.#owner.calls.push({ type: "close", target: this.target, connection: this.id });
    if (this.#closed) return;
    this.#shutDown(lostError(this, undefined, "the connection was closed"), undefined);
  }

  onClose(listener: (error?: TunnelError) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  #shutDown(processError: TunnelError, closeError: TunnelError | undefined): void {
    this.#closed = true;
    for (const remote of [...this.#running]) remote.lose(processError);
    this.#running.clear();
    const listeners = [...this.#listeners];
    this.#listeners.clear();
    for (const listener of listeners) {
      try {
        listener(closeError);
      } catch {
        // a listener's failure must not stop the others
      }
    }
  }
}
