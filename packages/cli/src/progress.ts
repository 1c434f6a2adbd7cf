/**
 * Transfer progress as the CLI shows it: `BarProgress` (bar-progress.ts) draws one bar per host on a terminal; off
 * the terminal and with `--json` nothing is drawn: `NoProgress` keeps the same shape.
 */
import type { Progress } from "@tunnel-sh/core";
import type { OutputStream } from "./output.js";

export interface TransferProgress {
  /** Start a bar for `name`; the returned callback is the transfer's `onProgress`. */
  start(name: string): (progress: Progress) => void;
  /** Mark `name`'s bar finished at `bytes`. */
  finish(name: string, bytes: number | undefined): void;
  /** Print a line above the bars (or plainly when there are none). */
  log(text: string): void;
  /** Draw the last state and release the terminal. Idempotent. */
  stop(): void;
  /** True while bars are on screen: other output must go through `log` then. */
  readonly active: boolean;
}

/**
 * A stream for other writers (the console tracer) that share the terminal with the bars: while bars are drawn,
 * their lines go above the bars instead of through them.
 */
export class SharedTerminal implements OutputStream {
  readonly #stream: OutputStream;
  /** The bars currently on screen, if any. */
  progress: TransferProgress | undefined;
  constructor(stream: OutputStream) {
    this.#stream = stream;
  }
  get isTTY(): boolean | undefined {
    return this.#stream.isTTY;
  }
  get columns(): number | undefined {
    return this.#stream.columns;
  }
  write(chunk: string): unknown {
    if (this.progress?.active) {
      this.progress.log(chunk);
      return true;
    }
    return this.#stream.write(chunk);
  }
}

/** No bars: lines go straight to the stream. */
export class NoProgress implements TransferProgress {
  readonly active = false;
  readonly #stream: OutputStream;
  constructor(stream: OutputStream) {
    this.#stream = stream;
  }
  start(_name: string): (progress: Progress) => void {
    return () => undefined;
  }
  finish(_name: string, _bytes: number | undefined): void {}
  log(text: string): void {
    this.#stream.write(text.endsWith("\n") ? text : `${text}\n`);
  }
  stop(): void {}
}
