/**
 * The one SFTP session a connection's transfers share: opened on first use (once a channel slot is free), closed
 * `sftpIdleMs` after the last transfer — or at once when an exec needs its slot — and confirmed closed before its
 * slot counts as free.
 */
import { ChannelError, hasCode, type Target, type TunnelError } from "@tunnel-sh/core";
import type { Client, SFTPWrapper } from "ssh2";
import type { ChannelSlots } from "./channel-slots.js";
import { normalizeError } from "./normalize-error.js";
import { bindSessionLoss } from "./sftp-transfer.js";

export interface SftpEntry {
  session: Promise<SFTPWrapper>;
  /** Transfers using the session now. */
  users: number;
  /** Closes the session when it stays unused. */
  idleTimer: NodeJS.Timeout | undefined;
  closing: Promise<void> | undefined;
}

/** What the SFTP session needs from its connection. */
export interface SftpSessionParts {
  readonly client: Client;
  readonly target: Target;
  readonly secrets: readonly (string | undefined)[];
  readonly sftpIdleMs: number;
  /** Aborted when the client closes: settles SFTP requests that ssh2 leaves without a callback. */
  readonly lost: AbortSignal;
  readonly slots: ChannelSlots;
  /** One global-request round trip (the connection's ping). */
  roundTrip(): Promise<void>;
  /** Set once the connection is closed or lost. */
  closedError(): TunnelError | undefined;
}

/** ssh2's table of open channels by id (its typings leave it out). */
function channelTable(client: Client): Record<string, unknown> {
  return (client as unknown as { _chanMgr?: { _channels?: Record<string, unknown> } })._chanMgr?._channels ?? {};
}

export class SftpSessions {
  private current: SftpEntry | undefined;

  constructor(private readonly parts: SftpSessionParts) {}

  /** A session is open or opening: it holds one of the connection's channel slots. */
  get open(): boolean {
    return this.current !== undefined;
  }

  /** Close the session if no transfer uses it; resolves once its slot is free. `undefined` when there is none to close. */
  closeIdle(): Promise<void> | undefined {
    const entry = this.current;
    if (entry && entry.users === 0 && !entry.closing) return this.close(entry);
    return undefined;
  }

  acquire(): SftpEntry {
    const current = this.current;
    if (current && !current.closing) {
      if (current.idleTimer) clearTimeout(current.idleTimer);
      current.idleTimer = undefined;
      current.users++;
      return current;
    }
    const entry: SftpEntry = { session: undefined as unknown as Promise<SFTPWrapper>, users: 1, idleTimer: undefined, closing: undefined };
    entry.session = this.parts.slots.forSftp().then(
      () =>
        new Promise<SFTPWrapper>((resolve, reject) => {
          try {
            const before = new Set(Object.keys(channelTable(this.parts.client)));
            this.parts.client.sftp((error, sftp) => {
              if (error) {
                const failure = normalizeError(error, { phase: "channel", target: this.parts.target, secrets: this.parts.secrets });
                if (hasCode(failure, "UNSUPPORTED_HOST")) {
                  // The channel opened but the server has no sftp subsystem. ssh2 leaves that channel open, holding one of
                  // the server's sessions (the only one under MaxSessions 1): close it, and count its slot as closing.
                  for (const [id, channel] of Object.entries(channelTable(this.parts.client))) {
                    if (!before.has(id) && typeof (channel as { destroy?: unknown }).destroy === "function") (channel as { destroy: () => void }).destroy();
                  }
                  queueMicrotask(() => this.parts.slots.channelClosed());
                }
                reject(failure);
                return;
              }
              sftp.on("error", () => {});
              // Requests in flight when the session closes under them (its server process was killed, say) get no
              // answer from ssh2: settle them, as a failure a new attempt (on a new session) may get past.
              const sessionClosed = new AbortController();
              bindSessionLoss(sftp, AbortSignal.any([this.parts.lost, sessionClosed.signal]));
              sftp.once("close", () => {
                if (this.current === entry) this.current = undefined;
                sessionClosed.abort(
                  new ChannelError("the SFTP session closed before the transfer ended", { phase: "transfer", target: this.parts.target, retryable: true }),
                );
              });
              resolve(sftp);
            });
          } catch (error) {
            reject(normalizeError(error, { phase: "channel", target: this.parts.target, secrets: this.parts.secrets }));
          }
        }),
    );
    entry.session.catch(() => {
      if (this.current === entry) this.current = undefined;
    });
    this.current = entry;
    return entry;
  }

  release(entry: SftpEntry): void {
    entry.users--;
    if (entry.users > 0 || entry.closing) return;
    // Linger a little: back-to-back transfers (a directory of small files) reuse the session instead of
    // paying a channel open + subsystem start each (about as much as one exec).
    entry.idleTimer = setTimeout(() => void this.close(entry), this.parts.sftpIdleMs);
    entry.idleTimer.unref();
  }

  /** Close an SFTP session; resolves once the server confirmed the channel closed (its slot is free again). */
  close(entry: SftpEntry): Promise<void> {
    if (entry.closing) return entry.closing;
    if (entry.idleTimer) clearTimeout(entry.idleTimer);
    entry.idleTimer = undefined;
    if (this.current === entry) this.current = undefined;
    this.parts.slots.hold();
    entry.closing = entry.session.then(
      (sftp) =>
        new Promise<void>((resolve) => {
          const state = (sftp as unknown as { outgoing?: { state?: string } }).outgoing?.state;
          if (state === "closed" || this.parts.closedError()) return resolve();
          sftp.once("close", () => {
            // ssh2 does not answer the server's close on an SFTP channel; sshd frees the session only once
            // it has our close too, and then only in a later turn of its main loop. One global-request round
            // trip after our close guarantees that turn happened before the next channel open arrives.
            try {
              sftp.end();
            } catch {
              // the connection is gone
            }
            this.parts.roundTrip().then(
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
    void entry.closing.then(() => this.parts.slots.release());
    return entry.closing;
  }
}
