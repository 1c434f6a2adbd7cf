/**
 * A remote process's stdin: writes made before its channel opens wait for it; `end()` sends EOF and never closes the
 * channel, so `kill()` keeps working afterwards.
 */
import { Writable } from "node:stream";
import type { ClientChannel } from "ssh2";
import { outgoing } from "./channel-signals.js";

type Callback = (error?: Error | null) => void;

export class ChannelStdin {
  readonly writable: Writable;
  /** Writes (a chunk) and the end (`undefined`) made before the channel opened. */
  private pending: Array<{ chunk: Buffer | undefined; callback: Callback }> = [];
  private channel: ClientChannel | undefined;
  /** Nothing more goes to the channel: the process ended (or never started), or its stdin is /dev/null on the host. */
  private closed = false;

  constructor() {
    this.writable = new Writable({
      write: (chunk: Buffer, _encoding, callback) => this.write(chunk, callback),
      final: (callback) => this.write(undefined, callback),
    });
  }

  /** stdin was ended, with nothing written, before the channel opened. */
  get noInput(): boolean {
    return this.pending.length === 1 && this.pending[0]?.chunk === undefined;
  }

  /** The channel is open: what was written meanwhile goes to it now. */
  attach(channel: ClientChannel): void {
    if (this.closed) return;
    this.channel = channel;
    const queued = this.pending;
    this.pending = [];
    for (const { chunk, callback } of queued) this.write(chunk, callback);
  }

  /** Input has nowhere to go from now on: queued and later writes complete without being sent. */
  close(): void {
    this.closed = true;
    const queued = this.pending;
    this.pending = [];
    for (const { callback } of queued) callback();
  }

  private write(chunk: Buffer | undefined, callback: Callback): void {
    if (this.closed) {
      // Dropped quietly rather than raising an error event nobody listens to.
      callback();
      return;
    }
    const channel = this.channel;
    if (!channel) {
      this.pending.push({ chunk, callback });
      return;
    }
    if (outgoing(channel).state !== "open") {
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
}
