/**
 * Progress bars for transfers, one per host, on a terminal (cli-progress). Imported only when bars are drawn, so
 * other runs never load cli-progress.
 */
import cliProgress from "cli-progress";
import type { Progress } from "@tunnel-sh/core";
import { formatBytes, type OutputStream } from "./output.js";
import type { TransferProgress } from "./progress.js";

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
