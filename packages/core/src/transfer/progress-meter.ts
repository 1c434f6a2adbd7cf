import type { Progress } from "../types.js";

/**
 * A transfer's progress across its files: bytes done, the total when known, the rate. Reports never decrease within an
 * attempt, and `finish()` makes the last report exactly the total.
 */
export class ProgressMeter {
  #done = 0;
  #reported = -1;
  readonly #startedAt = performance.now();
  readonly #listener: ((progress: Progress) => void) | undefined;
  total: number | undefined;

  constructor(listener: ((progress: Progress) => void) | undefined, total?: number) {
    this.#listener = listener;
    this.total = total;
  }

  /** A per-file listener: adds that file's progress to the total. */
  file(): { onProgress: (progress: Progress) => void; commit: (size: number) => void } {
    let fileBytes = 0;
    return {
      onProgress: (progress) => {
        if (progress.bytes > fileBytes) {
          this.#done += progress.bytes - fileBytes;
          fileBytes = progress.bytes;
          this.#report();
        }
      },
      commit: (size) => {
        if (size > fileBytes) this.#done += size - fileBytes;
        fileBytes = size;
        this.#report();
      },
    };
  }

  #report(): void {
    if (!this.#listener) return;
    const bytes = this.total !== undefined ? Math.min(this.#done, this.total) : this.#done;
    if (bytes <= this.#reported) return;
    this.#reported = bytes;
    const seconds = (performance.now() - this.#startedAt) / 1000;
    try {
      this.#listener({ bytes, total: this.total, rate: seconds > 0 ? bytes / seconds : 0 });
    } catch {
      // A progress listener must not break the transfer.
    }
  }

  finish(): void {
    if (this.total !== undefined && this.#reported !== this.total) {
      this.#done = this.total;
      this.#reported = this.total - 1;
      this.#report();
    }
  }
}
