import type { Environment } from "./environment.js";
import type { RowInput } from "./stats.js";

export interface BenchOptions {
  readonly quick: boolean;
  /** Sections to run (all when empty). */
  readonly only: readonly string[];
}

export interface Context {
  readonly environment: Environment;
  readonly options: BenchOptions;
  record(row: RowInput): void;
  log(message: string): void;
}

/** Samples of `tools`, taken round-robin (one sample of each per round) so load spikes spread over all of them. */
export async function interleaved(rounds: number, tools: ReadonlyArray<readonly [string, () => Promise<number>]>): Promise<Map<string, number[]>> {
  const samples = new Map<string, number[]>(tools.map(([name]) => [name, []]));
  for (let round = 0; round < rounds; round++) {
    for (const [name, measure] of tools) samples.get(name)?.push(await measure());
  }
  return samples;
}

/** A failure in a few words, for the table's note: the error code (tunnel's or Node's) and the message. */
export function describe(error: unknown): string {
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    return `${typeof code === "string" ? `${code}: ` : ""}${error.message.replace(/\s+/g, " ").slice(0, 160)}`;
  }
  return String(error);
}
