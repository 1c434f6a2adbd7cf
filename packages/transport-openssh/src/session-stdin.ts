/**
 * The session's stdin of one mux client: the command's stdin bytes and, framed (core's `StdinFramer`), its end and
 * the signals for its group.
 *
 * Framed, a kill needs no second channel and a closed channel stops the command: the waiter on the host reads the
 * frames. Not with a pty (the terminal would echo and translate the frames) or a local file as stdin (the master
 * reads that file itself): then the bytes pass as they are.
 */
import type { PassThrough, Writable } from "node:stream";
import { STDIN_DONE_FRAME, StdinFramer, stdinSignalFrame } from "@tunnel-sh/core/internal";

export class SessionStdin {
  private channel: Writable | undefined;
  private framer: StdinFramer | undefined;

  /**
   * @param source the `RemoteProcess.stdin` the caller writes to
   * @param framed whether the session's stdin carries frames
   */
  constructor(
    private readonly source: PassThrough,
    readonly framed: boolean,
  ) {}

  /** Connect the mux client's stdin (absent when a local file is its stdin). Framed, bytes wait for `startFraming`. */
  attach(channel: Writable | null): void {
    if (!channel) {
      this.source.resume();
      return;
    }
    this.channel = channel;
    // Framed, stdin waits for the waiter's first report to learn how to frame it.
    if (!this.framed) this.source.pipe(channel);
    channel.on("error", () => {
      // EPIPE when the remote side stopped reading; the exit status tells what happened.
    });
  }

  /** The waiter reported itself: from now on the caller's bytes go out in its frames. */
  startFraming(waiter: "perl" | "sh" | undefined): void {
    if (!this.framed || !this.channel || this.framer) return;
    this.framer = new StdinFramer(waiter === "perl" ? "perl" : "sh");
    this.source.pipe(this.framer).pipe(this.channel, { end: false });
  }

  /** Ask the waiter to signal the command's group (framed only). */
  signal(name: string): void {
    const channel = this.channel;
    if (channel && !channel.writableEnded) channel.write(stdinSignalFrame(name));
  }

  /**
   * The remote command is over (or cannot report any more): end the session's stdin. A mux client keeps the session
   * open until its own stdin reaches EOF, and nothing on the other side reads it any more.
   */
  release(): void {
    const channel = this.channel;
    if (!channel || channel.writableEnded) return;
    if (this.framed) {
      if (this.framer) {
        this.source.unpipe(this.framer);
        this.framer.unpipe(channel);
      }
      this.source.resume();
      // Done: the end of the channel's stdin that follows is not a closed channel.
      channel.end(STDIN_DONE_FRAME);
      return;
    }
    this.source.unpipe(channel);
    this.source.resume();
    channel.end();
  }

  /** The mux client exited: nothing reads stdin any more, so late writes drain instead of stalling the writer. */
  detach(): void {
    if (this.framer) this.source.unpipe(this.framer);
    else if (this.channel) this.source.unpipe(this.channel);
    this.source.resume();
  }
}
