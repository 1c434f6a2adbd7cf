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
const THROUGHPUT = "throughput: `true` × N on one host";
const FAN_OUT = "fan-out: one `true` per host alias, concurrency 32";
const CLI_RUN = "cli: `true` on one host, a new process and connection each (wall time from spawn to exit)";

function find(rows: readonly Row[], section: string, matchCase: (name: string) => boolean, tool: string): Row | undefined {
  return rows.find((row) => row.section === section && matchCase(row.case) && row.tool === tool && Number.isFinite(row.median));
}

/** The row of `section` whose case is `caseName` and whose tool name starts with `tool` (throughput rows add a count). */
function findTool(rows: readonly Row[], section: string, caseName: string, tool: string): Row | undefined {
  return rows.find((row) => row.section === section && row.case === caseName && row.tool.startsWith(tool) && Number.isFinite(row.median));
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
  // Rates (cmd/s, hosts/s): higher is better, so these ratios are "times as fast".
  const rate = (section: string, caseName: string, tool: string, baseline: string) => {
    const row = findTool(rows, section, caseName, tool);
    const other = findTool(rows, section, caseName, baseline);
    return row && other && other.median !== 0 ? { ratio: row.median / other.median, failures: (row.failures ?? 0) + (other.failures ?? 0) } : undefined;
  };
  const withFailures = (value: { ratio: number; failures: number } | undefined, limit: number, target: string, goal: string) => {
    if (value === undefined) return;
    goals.push({
      goal,
      measured: `${times(value.ratio)}${value.failures > 0 ? `, ${value.failures} failures` : ", 0 failures"}`,
      target: `${target}, 0 failures`,
      met: value.ratio >= limit && value.failures === 0,
    });
  };
  withFailures(
    rate(THROUGHPUT, "concurrency 32", "tunnel executor (openssh)", "ssh -S (ControlMaster, own budget)"),
    1,
    "≥ 1.00×",
    "concurrency 32 on one host, tunnel openssh ÷ an ssh -S loop (cmd/s)",
  );
  withFailures(
    rate(THROUGHPUT, "concurrency 32", "tunnel executor (openssh)", "tunnel executor (ssh2)"),
    0.5,
    "≥ 0.50×",
    "concurrency 32 on one host, tunnel openssh ÷ tunnel ssh2 (cmd/s)",
  );
  const fanOutCase = rows.find((row) => row.section === FAN_OUT)?.case;
  if (fanOutCase !== undefined) {
    withFailures(
      rate(FAN_OUT, fanOutCase, "tunnel executor (openssh)", "pssh (32 processes)"),
      1,
      "≥ 1.00× (wall ≤ pssh's)",
      `fan-out to ${fanOutCase}, tunnel openssh ÷ pssh (hosts/s)`,
    );
    withFailures(
      rate(FAN_OUT, fanOutCase, "tunnel executor (ssh2)", "pssh (32 processes)"),
      1.5,
      "≥ 1.50×",
      `fan-out to ${fanOutCase}, tunnel ssh2 ÷ pssh (hosts/s)`,
    );
  }
  for (const transport of ["ssh2", "openssh"]) {
    atMost(
      `\`tunnel run\` on one host (${transport}) ÷ \`ssh <alias> true\`, wall`,
      ratio(rows, CLI_RUN, () => true, `tunnel run --transport ${transport}`, "ssh <alias> true"),
      1.5,
      times,
      "≤ 1.50×",
    );
  }
  atMost(
    "`tunnel --help` ÷ `node -e 0`, wall",
    ratio(rows, "cli: start-up of the tunnel executable (wall time from spawn to exit)", () => true, "tunnel --help", "node -e 0"),
    1.5,
    times,
    "≤ 1.50×",
  );
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
