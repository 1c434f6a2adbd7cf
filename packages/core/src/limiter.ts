/**
 * The one concurrency limiter of tunnel: a FIFO counting semaphore, abortable while waiting, resizable while in use.
 * The executor's `maxConcurrent` and the fleet's `concurrency` are each one `Limiter`.
 *
 * @example
 * const limiter = new Limiter(4);
 * await limiter.acquire(signal);
 * try { await work(); } finally { limiter.release(); }
 */
export class Limiter {
  #limit: number;
  #running = 0;
  readonly #waiters: Array<{ resolve: () => void; reject: (error: unknown) => void; signal: AbortSignal | undefined; onAbort: () => void }> = [];

  /** @param limit how many holders at once (a whole number ≥ 1; validated by the caller's config). */
  constructor(limit: number) {
    this.#limit = limit;
  }

  /** Holders now. */
  get running(): number {
    return this.#running;
  }

  /** Callers waiting for a place, in order. */
  get queued(): number {
    return this.#waiters.length;
  }

  /** Change the limit; waiters that now fit go on at once, holders over a lowered limit keep their place. */
  resize(limit: number): void {
    this.#limit = limit;
    this.#drain();
  }

  /**
   * Wait for a place, first come first served. Rejects with `signal.reason` when `signal` aborts first (the place is
   * then not taken). Every resolved `acquire` MUST be followed by exactly one `release`.
   */
  acquire(signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) return Promise.reject(signal.reason as unknown);
    if (this.#running < this.#limit && this.#waiters.length === 0) {
      this.#running += 1;
      return Promise.resolve();
    }
    return new Promise<void>((resolve, reject) => {
      const waiter = {
        resolve,
        reject,
        signal,
        onAbort: () => {
          const index = this.#waiters.indexOf(waiter);
          if (index !== -1) this.#waiters.splice(index, 1);
          reject(signal?.reason as unknown);
        },
      };
      signal?.addEventListener("abort", waiter.onAbort, { once: true });
      this.#waiters.push(waiter);
    });
  }

  /** Give a place back; the oldest waiter takes it. */
  release(): void {
    this.#running -= 1;
    this.#drain();
  }

  #drain(): void {
    while (this.#running < this.#limit && this.#waiters.length > 0) {
      const waiter = this.#waiters.shift();
      if (!waiter) break;
      waiter.signal?.removeEventListener("abort", waiter.onAbort);
      this.#running += 1;
      waiter.resolve();
    }
  }
}
