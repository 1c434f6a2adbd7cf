/** Acquire wait times: count and max over the pool's life, percentiles over the most recent samples. */
export class WaitRecorder {
  private readonly samples: number[] = [];
  private next = 0;
  private count = 0;
  private max = 0;

  constructor(private readonly capacity = 1024) {}

  record(milliseconds: number): void {
    this.count += 1;
    if (milliseconds > this.max) this.max = milliseconds;
    // A ring buffer keeps memory flat however long the pool lives.
    if (this.samples.length < this.capacity) this.samples.push(milliseconds);
    else this.samples[this.next] = milliseconds;
    this.next = (this.next + 1) % this.capacity;
  }

  snapshot(): { readonly count: number; readonly p50: number; readonly p95: number; readonly max: number } {
    const sorted = [...this.samples].sort((a, b) => a - b);
    return { count: this.count, p50: percentile(sorted, 0.5), p95: percentile(sorted, 0.95), max: this.max };
  }
}

/** Nearest-rank percentile of sorted values; 0 when there are none. */
function percentile(sorted: readonly number[], fraction: number): number {
  if (sorted.length === 0) return 0;
  const rank = Math.ceil(fraction * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1] ?? 0;
}
