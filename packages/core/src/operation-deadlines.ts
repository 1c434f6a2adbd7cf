/**
 * The deadlines of an executor's operations, on one timer: it is set for the earliest deadline of the operations
 * still running and, when it fires, ends those whose time is up and sets itself for the next one. An operation that
 * ends in time only leaves the set, so a run of commands costs no timer of its own per command.
 */

interface PendingDeadline {
  readonly deadline: number;
  readonly expire: () => void;
}

export class OperationDeadlines {
  readonly #pending = new Set<PendingDeadline>();
  #timer: ReturnType<typeof setTimeout> | undefined;
  /** The deadline the timer is set for (Infinity when there is no timer). */
  #armedFor = Infinity;

  /**
   * Call `expire` at `deadline` (epoch milliseconds, as `Date.now()`), unless the returned function was called first.
   * @example const done = deadlines.add(Date.now() + 30_000, () => controller.abort(timeoutError)); try { … } finally { done(); }
   */
  add(deadline: number, expire: () => void): () => void {
    const entry: PendingDeadline = { deadline, expire };
    this.#pending.add(entry);
    if (deadline < this.#armedFor) this.#arm(deadline);
    // The timer keeps the process alive only while an operation waits for it.
    else (this.#timer as { ref?: () => void } | undefined)?.ref?.();
    return () => {
      if (!this.#pending.delete(entry) || this.#pending.size > 0) return;
      (this.#timer as { unref?: () => void } | undefined)?.unref?.();
    };
  }

  #arm(deadline: number): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#armedFor = deadline;
    this.#timer = setTimeout(this.#fire, Math.max(0, deadline - Date.now()));
  }

  readonly #fire = (): void => {
    // Everything due by the deadline the timer was set for has expired, whatever the clock reads now.
    const due = Math.max(this.#armedFor, Date.now());
    this.#timer = undefined;
    this.#armedFor = Infinity;
    for (const entry of [...this.#pending]) {
      if (entry.deadline > due) continue;
      this.#pending.delete(entry);
      try {
        entry.expire();
      } catch {
        // An operation's own failure to stop is its own.
      }
    }
    let next = Infinity;
    for (const entry of this.#pending) if (entry.deadline < next) next = entry.deadline;
    if (next < this.#armedFor) this.#arm(next);
  };
}
