/**
 * Rows of the results table: samples, their median/min/max, and ratios to the baselines of the same case.
 */

export type Unit = "ms" | "s" | "cmd/s" | "conn/s" | "hosts/s" | "MiB/s" | "MiB" | "KiB" | "B";

export interface RowInput {
  /** Section heading, e.g. "exec on an open connection". */
  readonly section: string;
  /** What was measured within the section, e.g. "concurrency 8" or "upload 256 MiB". Ratios compare rows of one case. */
  readonly case: string;
  readonly tool: string;
  readonly unit: Unit;
  readonly samples: readonly number[];
  /** Tools of the same case this row is compared with (median ÷ their median). */
  readonly against?: readonly string[];
  /** Operations that failed over all samples (channel refused, connect dropped, ...). */
  readonly failures?: number;
  readonly note?: string;
}

export interface Row extends RowInput {
  readonly median: number;
  readonly min: number;
  readonly max: number;
  ratios: Array<{ readonly baseline: string; readonly ratio: number }>;
}

export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[middle] as number) : ((sorted[middle - 1] as number) + (sorted[middle] as number)) / 2;
}

export function makeRow(input: RowInput): Row {
  const samples = input.samples.filter((value) => Number.isFinite(value));
  return {
    ...input,
    samples,
    median: median(samples),
    min: samples.length > 0 ? Math.min(...samples) : Number.NaN,
    max: samples.length > 0 ? Math.max(...samples) : Number.NaN,
    ratios: [],
  };
}

/** Fill in every row's ratios once all rows of the run exist. */
export function computeRatios(rows: readonly Row[]): void {
  for (const row of rows) {
    row.ratios = (row.against ?? []).flatMap((baseline) => {
      const other = rows.find((candidate) => candidate.section === row.section && candidate.case === row.case && candidate.tool === baseline);
      if (!other || !Number.isFinite(other.median) || other.median === 0) return [];
      return [{ baseline, ratio: row.median / other.median }];
    });
  }
}

export function formatNumber(value: number): string {
  if (!Number.isFinite(value)) return "–";
  const magnitude = Math.abs(value);
  if (magnitude >= 100) return Math.round(value).toLocaleString("en-US");
  if (magnitude >= 10) return value.toFixed(1);
  return value.toFixed(2);
}

/** Time `work` in milliseconds. */
export async function timed(work: () => Promise<unknown>): Promise<number> {
  const startedAt = performance.now();
  await work();
  return performance.now() - startedAt;
}

export const MiB = 1024 * 1024;
