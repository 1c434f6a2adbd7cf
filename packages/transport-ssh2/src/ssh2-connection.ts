import {
  AbortError,
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
import { ChannelSlots, type SlotHolders } from "./channel-slots.js";
import { execDownload, execUpload } from "./exec-transfer.js";
import { keepalivePing } from "./keepalive-ping.js";
import { normalizeError } from "./normalize-error.js";
import { Ssh2RemoteProcess, type ProcessHost } from "./remote-process.js";
import { serverSoftware } from "./server-software.js";
import { SftpSessions } from "./sftp-sessions.js";
import { downloadFile, uploadFile, type TransferTuning } from "./sftp-transfer.js";

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

/**
 * One authenticated ssh2 connection. Every exec is one `session` channel. SFTP transfers share one
 * `sftp` channel, opened on demand and closed `sftpIdleMs` after the last transfer ends — or at once when an
 * exec needs its slot — so the channels the pool leases (`maxChannels`) are always available to it.
 */
export class Ssh2Connection implements Connection, ProcessHost, SlotHolders {
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
  /** `Connection.maxCommandBytes`: what one exec request carries to this server (dropbear takes 9 000 bytes). */
  readonly maxCommandBytes: number;

  closedError: TunnelError | undefined;
  /** The server refused the SFTP subsystem once: transfers use `cat` over exec channels (`exec-transfer.ts`). */
  private sftpMissing = false;
  private readonly jumpClients: readonly Client[];
  private readonly tuning: TransferTuning;
  private readonly processes = new Set<Ssh2RemoteProcess>();
  private readonly listeners = new Set<(error?: TunnelError) => void>();
  /** Aborted when the client closes: settles SFTP requests that ssh2 leaves without a callback. Made with `sftp`. */
  private lost: AbortController | undefined;
  private readonly closeTimeoutMs: number;
  private closing = false;
  private lastError: TunnelError | undefined;
  private closedPromise: Promise<void>;
  private readonly slots: ChannelSlots;
  /** Made on the first transfer: most connections never open SFTP. */
  private sftpSessions: SftpSessions | undefined;

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
    this.maxCommandBytes = software.maxExecCommandBytes;
    this.closeTimeoutMs = parts.closeTimeoutMs ?? 2000;
    this.slots = new ChannelSlots(this.maxChannels, this);
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

  private get sftp(): SftpSessions {
    if (this.sftpSessions) return this.sftpSessions;
    const lost = (this.lost = new AbortController());
    if (this.closedError) lost.abort(this.closedError);
    this.sftpSessions = new SftpSessions({
      client: this.client,
      target: this.target,
      secrets: this.secrets,
      sftpIdleMs: this.tuning.sftpIdleMs,
      lost: lost.signal,
      slots: this.slots,
      roundTrip: () => this.ping(),
      closedError: () => this.closedError,
    });
    return this.sftpSessions;
  }

  /** `SlotHolders`: exec processes counted now. */
  processCount(): number {
    return this.processes.size;
  }

  /** `SlotHolders`: the SFTP session is open or opening. */
  sftpOpen(): boolean {
    return this.sftpSessions?.open ?? false;
  }

  /** `SlotHolders`: close the SFTP session if no transfer uses it. */
  closeIdleSftp(): Promise<void> | undefined {
    return this.sftpSessions?.closeIdle();
  }

  /** `SlotHolders`: one global-request round trip. */
  roundTrip(): Promise<void> {
    return this.ping();
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
    const entry = this.sftp.acquire();
    try {
      const sftp = await entry.session;
      await run(sftp);
    } catch (error) {
      // A transfer cut short by a lost connection reports the loss, not the SFTP symptom.
      if (this.closedError && !hasCode(error, "ABORTED")) throw this.closedError;
      throw normalizeError(error, { phase: "transfer", target: this.target, secrets: this.secrets });
    } finally {
      this.sftp.release(entry);
    }
  }

  beforeOpen(): Promise<void> | undefined {
    return this.slots.beforeOpen();
  }

  channelClosed(): void {
    this.slots.channelClosed();
  }

  /** The connect's probe closed its channel: count its slot until one round trip shows it free (`ChannelSlots`). */
  holdClosedSlot(): void {
    this.slots.holdClosedSlot();
  }

  reserveSlot(): () => void {
    return this.slots.reserve();
  }

  ping(options: { readonly signal?: AbortSignal } = {}): Promise<void> {
    return keepalivePing(this.client, this.target, () => this.closedError, options.signal);
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
    this.lost?.abort(lost);
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
