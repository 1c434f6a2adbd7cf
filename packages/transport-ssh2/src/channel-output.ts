/**
 * A remote process's stdout or stderr: a readable that exists from `spawn()` on and, once the channel opens, carries
 * the channel's bytes as they arrive. Nobody reading pauses the channel (SSH's window then holds the server back).
 * One plain readable fed directly, rather than a PassThrough the channel is piped into: half the streams and none
 * of the pipe's listeners on every command.
 */
import { Readable } from "node:stream";

export class ChannelOutput extends Readable {
  private source: Readable | undefined;
  private ended = false;

  /** The channel (or its stderr) is open: its bytes come through here until it ends. */
  attach(source: Readable): void {
    if (this.ended) return;
    this.source = source;
    source.on("data", this.onData);
    source.once("end", this.onEnd);
  }

  /** No more bytes: end the stream; what already arrived stays readable. Idempotent. */
  finish(): void {
    if (this.ended) return;
    this.ended = true;
    const source = this.source;
    if (source) {
      source.removeListener("data", this.onData);
      source.removeListener("end", this.onEnd);
    }
    this.push(null);
  }

  override _read(): void {
    if (!this.ended && this.source?.isPaused()) this.source.resume();
  }

  private readonly onData = (chunk: Buffer): void => {
    if (!this.push(chunk)) this.source?.pause();
  };

  private readonly onEnd = (): void => this.finish();
}
