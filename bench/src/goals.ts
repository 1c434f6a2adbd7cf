/**
 * The performance goals checked against one run's rows: each goal whose rows the run measured gets a line saying
 * what was measured, the target, and plainly whether it was met.
 */
import type { Row } from "./stats.js";

interface Goal {
  readonly goal: string;
  readonly measured: string;
  readonly target: string;
  readonly met: boolean;
}

const EXEC = "exec: one `true` on an open connection";
const TRANSFER = "transfer: one file, MiB/s";
const MEMORY = "memory";

function find(rows: readonly Row[], section: string, matchCase: (name: string) => boolean, tool: string): Row | undefined {
  return rows.find((row) => row.section === section && matchCase(row.case) && row.tool === tool && Number.isFinite(row.median));
}

/** `tool`'s median over `baseline`'s, both of the same case; undefined when either is missing. */
function ratio(rows: readonly Row[], section: string, matchCase: (name: string) => boolean, tool: string, baseline: string): number | undefined {
  const row = find(rows, section, matchCase, tool);
  const other = row && find(rows, section, (name) => name === row.case, baseline);
  return row && other && other.median !== 0 ? row.median / other.median : undefined;
}

export function checkGoals(rows: readonly Row[]): Goal[] {
  const goals: Goal[] = [];
  const atMost = (goal: string, value: number | undefined, limit: number, format: (value: number) => string, target: string) => {
    if (value !== undefined) goals.push({ goal, measured: format(value), target, met: value <= limit });
  };
  const atLeast = (goal: string, value: number | undefined, limit: number, format: (value: number) => string, target: string) => {
    if (value !== undefined) goals.push({ goal, measured: format(value), target, met: value >= limit });
  };
  const times = (value: number) => `${value.toFixed(2)}×`;
  const wall = (name: string) => name.endsWith("wall time");
  const cpu = (name: string) => name.endsWith("CPU time");
  atMost(
    "exec on an open connection, tunnel ssh2 wall ÷ raw ssh2 (noDelay)",
    ratio(rows, EXEC, wall, "tunnel executor (ssh2)", "raw ssh2 (noDelay)"),
    1.1,
    times,
    "≤ 1.10×",
  );
  atMost(
    "exec on an open connection, tunnel ssh2 CPU ÷ raw ssh2 (noDelay)",
    ratio(rows, EXEC, cpu, "tunnel executor (ssh2)", "raw ssh2 (noDelay)"),
    1.3,
    times,
    "≤ 1.30×",
  );
  atMost(
    "exec on an open connection, tunnel openssh wall ÷ ssh -S",
    ratio(rows, EXEC, wall, "tunnel executor (openssh)", "ssh -S (ControlMaster)"),
    1.05,
    times,
    "≤ 1.05×",
  );
  for (const transport of ["ssh2", "openssh"]) {
    for (const direction of ["upload", "download"]) {
      const matchCase = (name: string) => name.startsWith(`${direction} `);
      atLeast(
        `${direction}, tunnel ${transport} ÷ scp`,
        ratio(rows, TRANSFER, matchCase, `tunnel executor (${transport})`, "scp (new connection)"),
        2,
        times,
        "≥ 2.00×",
      );
      // Rates: the time verification adds is plain rate ÷ verified rate − 1.
      const verified = ratio(rows, TRANSFER, matchCase, `tunnel executor (${transport})`, `tunnel executor (${transport}, verify sha256)`);
      atMost(
        `${direction}, time sha256 verification adds (tunnel ${transport})`,
        verified === undefined ? undefined : verified - 1,
        0.1,
        (value) => `${(value * 100).toFixed(0)}%`,
        "≤ 10%",
      );
    }
  }
  for (const transport of ["ssh2", "openssh"]) {
    const row = find(rows, MEMORY, (name) => name.endsWith("up then down, peak RSS added"), `tunnel (${transport}) executor`);
    if (row) atMost(`${row.case}, tunnel ${transport} (Node's RSS)`, row.median, 64, (value) => `${value.toFixed(1)} MiB`, "≤ 64 MiB");
  }
  atMost(
    "one idle pooled ssh2 connection, V8 heap + external ÷ a bare ssh2 client's",
    ratio(rows, MEMORY, (name) => name.startsWith("one idle connection"), "tunnel (ssh2) pooled connection", "raw ssh2 client"),
    1.5,
    times,
    "≤ 1.50×",
  );
  return goals;
}

export function goalsMarkdown(rows: readonly Row[]): string {
  const goals = checkGoals(rows);
  if (goals.length === 0) return "";
  const lines = ["", "", "#### goals", "", "| goal | measured | target | met |", "|---|--:|--:|---|"];
  for (const goal of goals) lines.push(`| ${goal.goal} | ${goal.measured} | ${goal.target} | ${goal.met ? "met" : "**missed**"} |`);
  return lines.join("\n");
}
