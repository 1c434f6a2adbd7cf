/**
 * The fault table in docs/faults.md, as data: the fault suite records what each fault did to each transport, and
 * a test compares those observations with the table's rows (exact codes, phases, flags; attempts and detection
 * times as bounds). `TUNNEL_WRITE_FAULT_TABLE=1` prints the observed rows instead of failing on a mismatch.
 */
import { readFileSync } from "node:fs";
import { TunnelError } from "@tunnel-sh/core";

export const FAULT_DOC = new URL("../../../docs/faults.md", import.meta.url);
const START = "<!-- fault-table:start -->";
const END = "<!-- fault-table:end -->";
const NONE = "—";

export interface FaultObservation {
  readonly fault: string;
  readonly transport: string;
  /** The error's class name, or `succeeds`. */
  readonly outcome: string;
  readonly code: string;
  /** For `RETRIES_EXHAUSTED`: the last attempt's code; otherwise `—`. */
  readonly lastAttempt: string;
  readonly phase: string;
  readonly retryable: string;
  readonly attempts: number;
  /** From the fault (or the operation's start, for faults present before it) to the error or the result. */
  readonly ms: number;
}

/** What an operation ended with, in the table's terms. */
export function observe(fault: string, transport: string, outcome: unknown, attempts: number, ms: number): FaultObservation {
  if (!TunnelError.is(outcome)) {
    if (outcome instanceof Error) throw new Error(`${fault} over ${transport}: not a tunnel error: ${outcome.name}: ${outcome.message}`);
    return { fault, transport, outcome: "succeeds", code: NONE, lastAttempt: NONE, phase: NONE, retryable: NONE, attempts, ms };
  }
  const cause = (outcome as { cause?: unknown }).cause;
  return {
    fault,
    transport,
    outcome: outcome.name,
    code: outcome.code,
    lastAttempt: outcome.code === "RETRIES_EXHAUSTED" && TunnelError.is(cause) ? cause.code : NONE,
    phase: outcome.phase,
    retryable: String(outcome.retryable),
    attempts,
    ms,
  };
}

/** A row of the table: an observation's columns, with attempts and detection time as the bounds the table allows. */
export interface FaultRow extends Omit<FaultObservation, "attempts" | "ms"> {
  /** `3`, or `≤ 3`. */
  readonly attempts: string;
  /** `< 5 s`. */
  readonly detected: string;
}

const COLUMNS = ["fault", "transport", "outcome", "code", "last attempt", "phase", "retryable", "attempts", "detected"] as const;

function cells(line: string): string[] {
  return line
    .trim()
    .replace(/^\|/, "")
    .replace(/\|$/, "")
    .split("|")
    .map((cell) => cell.trim().replace(/^`|`$/g, ""));
}

/**
 * The rows between a table's markers in docs/faults.md: `<!-- fault-table:start -->` … `<!-- fault-table:end -->` by
 * default, or those of another table of the same columns (`table: "safety-table"`).
 */
export function readFaultTable(text = readFileSync(FAULT_DOC, "utf8"), table = "fault-table"): FaultRow[] {
  const startMarker = table === "fault-table" ? START : `<!-- ${table}:start -->`;
  const endMarker = table === "fault-table" ? END : `<!-- ${table}:end -->`;
  const start = text.indexOf(startMarker);
  const end = text.indexOf(endMarker);
  if (start === -1 || end === -1 || end < start) throw new Error(`docs/faults.md: the markers ${startMarker} / ${endMarker} are missing`);
  const lines = text
    .slice(start + startMarker.length, end)
    .split("\n")
    .filter((line) => line.trim().startsWith("|"));
  const header = cells(lines[0] ?? "").map((cell) => cell.toLowerCase());
  if (header.join("|") !== COLUMNS.join("|")) throw new Error(`docs/faults.md: the table's columns must be ${COLUMNS.join(", ")}; got ${header.join(", ")}`);
  return lines.slice(2).map((line) => {
    const [fault = "", transport = "", outcome = "", code = "", lastAttempt = "", phase = "", retryable = "", attempts = "", detected = ""] = cells(line);
    return { fault, transport, outcome, code, lastAttempt, phase, retryable, attempts, detected };
  });
}

function boundMs(text: string): number {
  const match = /^<\s*([\d.]+)\s*(ms|s)$/.exec(text);
  if (!match) throw new Error(`a detection time must read like "< 5 s" or "< 500 ms", got ${JSON.stringify(text)}`);
  return Number(match[1]) * (match[2] === "s" ? 1_000 : 1);
}

function attemptsMatch(text: string, attempts: number): boolean {
  const bound = /^≤\s*(\d+)$/.exec(text);
  if (bound) return attempts >= 1 && attempts <= Number(bound[1]);
  return /^\d+$/.test(text) && Number(text) === attempts;
}

/** Every difference between the observations and the table; empty when they agree. */
export function compareWithTable(observations: readonly FaultObservation[], rows: readonly FaultRow[]): string[] {
  const problems: string[] = [];
  const key = (fault: string, transport: string) => `${fault} / ${transport}`;
  const byKey = new Map(rows.map((row) => [key(row.fault, row.transport), row]));
  const seen = new Set<string>();
  for (const observed of observations) {
    const name = key(observed.fault, observed.transport);
    seen.add(name);
    const row = byKey.get(name);
    if (!row) {
      problems.push(`${name}: observed but not in the table`);
      continue;
    }
    for (const field of ["outcome", "code", "lastAttempt", "phase", "retryable"] as const) {
      if (row[field] !== observed[field]) problems.push(`${name}: ${field} is ${observed[field]}, the table says ${row[field]}`);
    }
    if (!attemptsMatch(row.attempts, observed.attempts)) problems.push(`${name}: ${observed.attempts} attempts, the table says ${row.attempts}`);
    if (!(observed.ms < boundMs(row.detected))) problems.push(`${name}: took ${Math.round(observed.ms)} ms, the table says ${row.detected}`);
  }
  for (const row of rows) if (!seen.has(key(row.fault, row.transport))) problems.push(`${key(row.fault, row.transport)}: in the table but not observed`);
  return problems;
}

/** The observations as table rows (for `TUNNEL_WRITE_FAULT_TABLE=1`): detection rounded up to a loose bound. */
export function renderRows(observations: readonly FaultObservation[]): string {
  const bound = (ms: number) => `< ${Math.max(1, Math.ceil((ms * 2) / 1_000 / 5) * 5)} s`;
  return observations
    .map((o) => `| ${o.fault} | ${o.transport} | ${o.outcome} | ${o.code} | ${o.lastAttempt} | ${o.phase} | ${o.retryable} | ${o.attempts} | ${bound(o.ms)} |`)
    .join("\n");
}
