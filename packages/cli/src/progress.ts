/**
 * Progress bars for transfers, one per host, on a terminal (cli-progress). Off the terminal and with `--json`
 * nothing is drawn: `NoProgress` keeps the same shape.
 */
import cliProgress from "cli-progress";
import type { Progress } from "@tunnel-sh/core";
import { formatBytes, type OutputStream } from "./output.js";

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

interface BarState {
  readonly bar: cliProgress.SingleBar;
  total: number;
}

/** One cli-progress bar per host, drawn on `stream` (a TTY). */
export class BarProgress implements TransferProgress {
  readonly #multibar: cliProgress.MultiBar;
  readonly #bars = new Map<string, BarState>();
  readonly #width: number;
  #stopped = false;

  get active(): boolean {
    return !this.#stopped;
  }

  constructor(stream: OutputStream, names: readonly string[]) {
    this.#width = Math.max(0, ...names.map((name) => name.length));
    this.#multibar = new cliProgress.MultiBar(
      {
        stream: stream as NodeJS.WriteStream,
        format: "{name} |{bar}| {percentage}% | {done}/{size} | {speed}",
        barCompleteChar: "\u2588",
        barIncompleteChar: "\u2591",
        barsize: 30,
        hideCursor: true,
        clearOnComplete: false,
        stopOnComplete: false,
        // tunnel handles Ctrl-C itself: it cancels the transfers, then stops the bars.
        gracefulExit: false,
        autopadding: true,
        fps: 10,
        // Lines logged above the bars clear the line; redraw even when the bar did not change.
        forceRedraw: true,
      },
      cliProgress.Presets.shades_classic,
    );
  }

  start(name: string): (progress: Progress) => void {
    let state = this.#bars.get(name);
    if (!state) {
      const bar = this.#multibar.create(1, 0, { name: name.padEnd(this.#width), done: formatBytes(0), size: "?", speed: "" });
      state = { bar, total: 1 };
      this.#bars.set(name, state);
    }
    const current = state;
    return (progress: Progress) => {
      if (this.#stopped) return;
      if (progress.total !== undefined && progress.total !== current.total) {
        current.total = Math.max(progress.total, 1);
        current.bar.setTotal(current.total);
      }
      current.bar.update(Math.min(progress.bytes, current.total), {
        done: formatBytes(progress.bytes),
        size: progress.total === undefined ? "?" : formatBytes(progress.total),
        speed: `${formatBytes(Math.round(progress.rate))}/s`,
      });
    };
  }

  finish(name: string, bytes: number | undefined): void {
    const state = this.#bars.get(name);
    if (!state || this.#stopped) return;
    if (bytes !== undefined) {
      state.total = Math.max(bytes, 1);
      state.bar.setTotal(state.total);
      state.bar.update(state.total, { done: formatBytes(bytes), size: formatBytes(bytes) });
    }
    state.bar.stop();
  }

  log(text: string): void {
    if (this.#stopped) return;
    this.#multibar.log(text.endsWith("\n") ? text : `${text}\n`);
  }

  stop(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    // A last redraw writes lines logged since the previous one.
    this.#multibar.update();
    this.#multibar.stop();
  }
}
