import {
  AbortError,
  ChannelError,
  ConnectError,
  hasCode,
  UnsupportedHostError,
  type Connection,
  type ConnectionCapabilities,
  type DownloadRequest,
  type RemoteProcess,
  type SpawnRequest,
  type Target,
  type TunnelError,
  type UploadRequest,
} from "@tunnel-sh/core";
import type { Client, SFTPWrapper } from "ssh2";
import { normalizeError } from "./normalize-error.js";
import { execDownload, execUpload } from "./exec-transfer.js";
import { Ssh2RemoteProcess, type ProcessHost } from "./remote-process.js";
import { serverSoftware } from "./server-software.js";
import { bindSessionLoss, downloadFile, uploadFile, type TransferTuning } from "./sftp-transfer.js";

interface SftpEntry {
  session: Promise<SFTPWrapper>;
  /** Transfers using the session now. */
  users: number;
  /** Closes the session when it stays unused. */
  idleTimer: NodeJS.Timeout | undefined;
  closing: Promise<void> | undefined;
}

export interface Ssh2ConnectionParts {
  /** The authenticated client of the final hop. */
  readonly client: Client;
  /** Clients of the jump hosts, first hop first; closed with the connection. */
  readonly jumpClients: readonly Client[];
  readonly target: Target;
  readonly maxChannels: number;
  readonly tuning: TransferTuning;
  readonly secrets: readonly (string | undefined)[];
  readonly killGraceMs: number;
  /** How long close() waits for a clean SSH disconnect before destroying the socket. Default 2000. */
  readonly closeTimeoutMs?: number;
}

/** ssh2's table of open channels by id (its typings leave it out). */
function channelTable(client: Client): Record<string, unknown> {
  return (client as unknown as { _chanMgr?: { _channels?: Record<string, unknown> } })._chanMgr?._channels ?? {};
}

/**
 * One authenticated ssh2 connection. Every exec is one `session` channel. SFTP transfers share one
 * `sftp` channel, opened on demand and closed `sftpIdleMs` after the last transfer ends — or at once when an
 * exec needs its slot — so the channels the pool leases (`maxChannels`) are always available to it.
 */
export class Ssh2Connection implements Connection, ProcessHost {
  readonly transport = "ssh2";
  readonly capabilities: ConnectionCapabilities = { pty: true, signals: true, transfer: true };
  readonly maxChannels: number;
  readonly target: Target;
  readonly client: Client;
  readonly secrets: readonly (string | undefined)[];
  readonly killGraceMs: number;
  /**
   * The server signals only the session's pid (dropbear), not a process group it leads (OpenSSH): commands run in
   * a group of their own then, which passes the signals on (core's `inOwnProcessGroup`). A guess from the server's
   * software version until the transport's connect has asked the server (`session-group-probe.ts`).
   */
  signalsOnlySessionPid: boolean;
  /**
   * Whether the server's identification line already says how it signals (OpenSSH's sshd always makes the session's
   * command a group leader; dropbear never does), so that no probe is needed at connect.
   */
  readonly sessionGroupKnown: boolean;
  /** The longest command one exec request may carry to this server (dropbear takes far less than OpenSSH). */
  readonly maxExecCommandBytes: number;

  closedError: TunnelError | undefined;
  /** The server refused the SFTP subsystem once: transfers use `cat` over exec channels (`exec-transfer.ts`). */
  private sftpMissing = false;
  private readonly jumpClients: readonly Client[];
  private readonly tuning: TransferTuning;
  private readonly processes = new Set<Ssh2RemoteProcess>();
  private readonly listeners = new Set<(error?: TunnelError) => void>();
  /** Aborted when the client closes: settles SFTP requests that ssh2 leaves without a callback. */
  private readonly lost = new AbortController();
  private readonly closeTimeoutMs: number;
  private closing = false;
  private lastError: TunnelError | undefined;
  private closedPromise: Promise<void>;
  private sftp: SftpEntry | undefined;
  /** Channels closed on our side whose server-side slot is not yet confirmed free. */
  private closingSlots = 0;
  private slotWaiters: Array<() => void> = [];

  constructor(parts: Ssh2ConnectionParts) {
    this.client = parts.client;
    this.jumpClients = parts.jumpClients;
    this.target = parts.target;
    this.maxChannels = parts.maxChannels;
    this.tuning = parts.tuning;
    this.secrets = parts.secrets;
    this.killGraceMs = parts.killGraceMs;
    const software = serverSoftware(this.client);
    this.sessionGroupKnown = software.sessionGroupKnown;
    this.signalsOnlySessionPid = software.signalsOnlySessionPid;
    this.maxExecCommandBytes = software.maxExecCommandBytes;
    this.closeTimeoutMs = parts.closeTimeoutMs ?? 2000;
    this.closedPromise = new Promise<void>((resolve) => {
      this.client.once("close", () => {
        this.onClientClose();
        resolve();
      });
    });
    this.client.on("error", (error: unknown) => {
      this.lastError ??= normalizeError(error, { phase: "exec", target: this.target, secrets: this.secrets });
    });
    // A jump host going away takes the forwarded connection with it; make sure the final client notices.
    for (const jump of this.jumpClients) {
      jump.on("error", () => {});
      jump.once("close", () => {
        if (!this.closedError) this.client.destroy();
      });
    }
  }

  get closed(): boolean {
    return this.closedError !== undefined;
  }

  spawn(request: SpawnRequest): RemoteProcess {
    return new Ssh2RemoteProcess(this, request);
  }

  track(process: Ssh2RemoteProcess): void {
    this.processes.add(process);
  }

  untrack(process: Ssh2RemoteProcess): void {
    this.processes.delete(process);
  }

  async upload(request: UploadRequest): Promise<void> {
    if (this.sftpMissing) return execUpload(this, request);
    try {
      await this.transfer(request.signal, (sftp) => uploadFile(sftp, request, this.tuning, this.target));
    } catch (error) {
      if (!this.noSftp(error)) throw error;
      await execUpload(this, request);
    }
  }

  async download(request: DownloadRequest): Promise<void> {
    if (this.sftpMissing) return execDownload(this, request);
    try {
      await this.transfer(request.signal, (sftp) => downloadFile(sftp, request, this.tuning, this.target));
    } catch (error) {
      if (!this.noSftp(error)) throw error;
      await execDownload(this, request);
    }
  }

  /** The server has no SFTP subsystem: remember it, and move bytes over exec channels from now on. */
  private noSftp(error: unknown): boolean {
    if (!UnsupportedHostError.is(error) || error.reason !== "sftp") return false;
    this.sftpMissing = true;
    return true;
  }

  private async transfer(signal: AbortSignal | undefined, run: (sftp: SFTPWrapper) => Promise<void>): Promise<void> {
    if (signal?.aborted) throw new AbortError("the transfer was aborted", { phase: "transfer", target: this.target });
    if (this.closedError) throw this.closedError;
    const entry = this.acquireSftp();
    try {
      const sftp = await entry.session;
      await run(sftp);
    } catch (error) {
      // A transfer cut short by a lost connection reports the loss, not the SFTP symptom.
      if (this.closedError && !hasCode(error, "ABORTED")) throw this.closedError;
      throw normalizeError(error, { phase: "transfer", target: this.target, secrets: this.secrets });
    } finally {
      this.releaseSftp(entry);
    }
  }

  private acquireSftp(): SftpEntry {
    const current = this.sftp;
    if (current && !current.closing) {
      if (current.idleTimer) clearTimeout(current.idleTimer);
      current.idleTimer = undefined;
      current.users++;
      return current;
    }
    const entry: SftpEntry = { session: undefined as unknown as Promise<SFTPWrapper>, users: 1, idleTimer: undefined, closing: undefined };
    entry.session = this.slotForSftp().then(
      () =>
        new Promise<SFTPWrapper>((resolve, reject) => {
          try {
            const before = new Set(Object.keys(channelTable(this.client)));
            this.client.sftp((error, sftp) => {
              if (error) {
                const failure = normalizeError(error, { phase: "channel", target: this.target, secrets: this.secrets });
                if (hasCode(failure, "UNSUPPORTED_HOST")) {
                  // The channel opened but the server has no sftp subsystem. ssh2 leaves that channel open, holding one of
                  // the server's sessions (the only one under MaxSessions 1): close it, and count its slot as closing.
                  for (const [id, channel] of Object.entries(channelTable(this.client))) {
                    if (!before.has(id) && typeof (channel as { destroy?: unknown }).destroy === "function") (channel as { destroy: () => void }).destroy();
                  }
                  queueMicrotask(() => this.channelClosed());
                }
                reject(failure);
                return;
              }
              sftp.on("error", () => {});
              // Requests in flight when the session closes under them (its server process was killed, say) get no
              // answer from ssh2: settle them, as a failure a new attempt (on a new session) may get past.
              const sessionClosed = new AbortController();
              bindSessionLoss(sftp, AbortSignal.any([this.lost.signal, sessionClosed.signal]));
              sftp.once("close", () => {
                if (this.sftp === entry) this.sftp = undefined;
                sessionClosed.abort(
                  new ChannelError("the SFTP session closed before the transfer ended", { phase: "transfer", target: this.target, retryable: true }),
                );
              });
              resolve(sftp);
            });
          } catch (error) {
            reject(normalizeError(error, { phase: "channel", target: this.target, secrets: this.secrets }));
          }
        }),
    );
    entry.session.catch(() => {
      if (this.sftp === entry) this.sftp = undefined;
    });
    this.sftp = entry;
    return entry;
  }

  private releaseSftp(entry: SftpEntry): void {
    entry.users--;
    if (entry.users > 0 || entry.closing) return;
    // Linger a little: back-to-back transfers (a directory of small files) reuse the session instead of
    // paying a channel open + subsystem start each (about as much as one exec).
    entry.idleTimer = setTimeout(() => void this.closeSftp(entry), this.tuning.sftpIdleMs);
    entry.idleTimer.unref();
  }

  /** Close an SFTP session; resolves once the server confirmed the channel closed (its slot is free again). */
  private closeSftp(entry: SftpEntry): Promise<void> {
    if (entry.closing) return entry.closing;
    if (entry.idleTimer) clearTimeout(entry.idleTimer);
    entry.idleTimer = undefined;
    if (this.sftp === entry) this.sftp = undefined;
    this.closingSlots++;
    entry.closing = entry.session.then(
      (sftp) =>
        new Promise<void>((resolve) => {
          const state = (sftp as unknown as { outgoing?: { state?: string } }).outgoing?.state;
          if (state === "closed" || this.closedError) return resolve();
          sftp.once("close", () => {
            // ssh2 does not answer the server's close on an SFTP channel; sshd frees the session only once
            // it has our close too, and then only in a later turn of its main loop. One global-request round
            // trip after our close guarantees that turn happened before the next channel open arrives.
            try {
              sftp.end();
            } catch {
              // the connection is gone
            }
            this.ping().then(
              () => resolve(),
              () => resolve(),
            );
          });
          try {
            // EOF first: sftp-server exits, and sshd closes the channel only after it reaped that process.
            // (Closing from our side first is confirmed before the process is gone, and an exec opened
            // right then may be refused for want of a session slot.)
            const internals = sftp as unknown as { _protocol?: { channelEOF?: (id: number) => void }; outgoing: { id: number } };
            if (state === "open" && typeof internals._protocol?.channelEOF === "function") {
              (sftp as unknown as { outgoing: { state: string } }).outgoing.state = "eof";
              internals._protocol.channelEOF(internals.outgoing.id);
            } else {
              sftp.end();
            }
          } catch {
            resolve();
          }
        }),
      () => {},
    );
    void entry.closing.then(() => this.slotReleased());
    return entry.closing;
  }

  /**
   * Called before an exec channel opens. sshd frees a closed channel's session slot only in a later turn of its
   * main loop, so an open sent right after a close can be refused at MaxSessions (measured: a third of the
   * opens on a saturated connection). Opens that would exceed `maxChannels` therefore wait until recently closed
   * channels are confirmed gone (one global-request round trip after each close), and an idle SFTP session
   * gives its slot back. Returns undefined — no waiting — whenever there is room.
   */
  beforeOpen(): Promise<void> | undefined {
    if (this.slotsInUse() <= this.maxChannels) return undefined;
    return this.waitForSlot();
  }

  /** An exec channel this connection opened has closed: its server-side slot is free after one round trip. */
  channelClosed(): void {
    if (this.closedError) return;
    // With room to spare, a slot that sshd frees a moment late cannot make an open fail: no round trip needed.
    if (this.slotsInUse() + 1 < this.maxChannels) return;
    this.holdClosedSlot();
  }

  /**
   * Count a channel that just closed as holding its server-side slot until one round trip shows it free, even with
   * room to spare: for the connect's own probe, whose slot must not make the caller's first burst of opens fail.
   */
  holdClosedSlot(): void {
    if (this.closedError) return;
    this.closingSlots++;
    void this.ping()
      .catch(() => {})
      .then(() => this.slotReleased());
  }

  reserveSlot(): () => void {
    this.closingSlots++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.slotReleased();
    };
  }

  private slotsInUse(): number {
    return this.processes.size + this.closingSlots + (this.sftp ? 1 : 0);
  }

  private slotReleased(): void {
    this.closingSlots--;
    const waiters = this.slotWaiters;
    this.slotWaiters = [];
    for (const wake of waiters) wake();
  }

  /** An SFTP channel needs a free slot too: wait for a just-closed exec's slot when the budget is that tight. */
  private async slotForSftp(): Promise<void> {
    while (!this.closedError && this.closingSlots > 0 && this.processes.size + this.closingSlots + 1 > this.maxChannels) {
      await new Promise<void>((resolve) => this.slotWaiters.push(resolve));
    }
  }

  private async waitForSlot(): Promise<void> {
    while (!this.closedError && this.slotsInUse() > this.maxChannels) {
      const entry = this.sftp;
      if (entry && entry.users === 0 && !entry.closing) {
        await this.closeSftp(entry);
        continue;
      }
      if (this.closingSlots > 0) {
        await new Promise<void>((resolve) => this.slotWaiters.push(resolve));
        continue;
      }
      return; // over budget by the caller's own doing; the server decides
    }
  }

  ping(options: { readonly signal?: AbortSignal } = {}): Promise<void> {
    const signal = options.signal;
    if (signal?.aborted) return Promise.reject(new AbortError("the ping was aborted", { phase: "connect", target: this.target }));
    if (this.closedError) return Promise.reject(this.closedError);
    return new Promise<void>((resolve, reject) => {
      let settled = false;
      const settle = (error?: unknown): void => {
        if (settled) return;
        settled = true;
        signal?.removeEventListener("abort", onAbort);
        if (error === undefined) resolve();
        else reject(error);
      };
      const onAbort = (): void => settle(new AbortError("the ping was aborted", { phase: "connect", target: this.target }));
      signal?.addEventListener("abort", onAbort, { once: true });
      const answered = (error: unknown): void => {
        // REQUEST_FAILURE (`true`) is an answer too; only an Error means the connection is gone.
        if (error instanceof Error) settle(this.closedError ?? normalizeError(error, { phase: "connect", target: this.target }));
        else settle();
      };
      try {
        // A keepalive@openssh.com global request and its reply — exactly what ssh2's own keepalive sends.
        // ssh2 offers no public call for it, so queue the reply callback the way its keepalive does.
        const internals = this.client as unknown as { _protocol?: { ping?: () => void }; _callbacks?: Array<(error: unknown) => void> };
        if (typeof internals._protocol?.ping === "function" && Array.isArray(internals._callbacks)) {
          internals._callbacks.push(answered);
          internals._protocol.ping();
        } else {
          // Public fallback: cancelling a forward that does not exist is answered (with a failure) by the server.
          this.client.unforwardIn("127.0.0.1", 0, (error) => answered(error && /No response|Not connected/.test(error.message) ? error : undefined));
        }
      } catch (error) {
        settle(normalizeError(error, { phase: "connect", target: this.target }));
      }
    });
  }

  async close(): Promise<void> {
    if (!this.closedError) {
      this.closing = true;
      try {
        this.client.end();
      } catch {
        // already gone
      }
      const timer = setTimeout(() => this.client.destroy(), this.closeTimeoutMs);
      timer.unref();
      await this.closedPromise;
      clearTimeout(timer);
    }
    await this.closeJumps();
  }

  onClose(listener: (error?: TunnelError) => void): () => void {
    if (this.closedError) {
      const error = this.closing ? undefined : this.closedError;
      queueMicrotask(() => listener(error));
      return () => {};
    }
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private onClientClose(): void {
    const lost =
      this.lastError && this.lastError.code === "CONNECTION_LOST"
        ? this.lastError
        : new ConnectError(this.closing ? "the connection was closed" : `the connection was lost (${this.target.host})`, {
            lost: true,
            phase: "exec",
            target: this.target,
            ...(this.lastError ? { cause: this.lastError } : {}),
          });
    this.closedError = lost;
    this.lost.abort(lost);
    for (const process of [...this.processes]) process.connectionLost(lost);
    this.processes.clear();
    void this.closeJumps();
    const error = this.closing ? undefined : lost;
    for (const listener of [...this.listeners]) {
      try {
        listener(error);
      } catch {
        // A listener's failure is its own.
      }
    }
    this.listeners.clear();
  }

  private async closeJumps(): Promise<void> {
    await Promise.all(
      [...this.jumpClients].reverse().map(
        (jump) =>
          new Promise<void>((resolve) => {
            const sock = (jump as unknown as { _sock?: { destroyed?: boolean } })._sock;
            if (!sock || sock.destroyed) return resolve();
            jump.once("close", () => resolve());
            try {
              jump.end();
            } catch {
              resolve();
            }
            setTimeout(() => {
              jump.destroy();
              resolve();
            }, this.closeTimeoutMs).unref();
          }),
      ),
    );
  }
}
