import { formatNumber, type Row } from "./stats.js";

export interface RunInfo {
  readonly date: string;
  readonly quick: boolean;
  readonly node: string;
  readonly openssh: string;
  readonly cpus: number;
  readonly loadBefore: readonly number[];
  readonly loadAfter: readonly number[];
  readonly durationS: number;
  readonly user: string;
  readonly loginShell: string;
  readonly profileFiles: Record<string, number>;
  readonly maxSessions: number;
}

const load = (values: readonly number[]) => values.map((value) => value.toFixed(2)).join(" / ");

/** The results as markdown: a short header, then one table per section. */
export function markdown(info: RunInfo, rows: readonly Row[]): string {
  const lines: string[] = [];
  lines.push(
    `Run ${info.date}${info.quick ? " (--quick)" : ""}: Node ${info.node}, ${info.openssh}, ${info.cpus} CPUs, ` +
      `load average (1/5/15 min) ${load(info.loadBefore)} before and ${load(info.loadAfter)} after, ${Math.round(info.durationS)} s.`,
  );
  lines.push(
    `Login user \`${info.user}\` (shell ${info.loginShell}, ${Object.keys(info.profileFiles).length === 0 ? "no start-up files" : `start-up files ${JSON.stringify(info.profileFiles)}`}), ` +
      `sshd MaxSessions ${info.maxSessions}. Ratio = this row's median ÷ the named row's median.`,
  );
  const sections = [...new Set(rows.map((row) => row.section))];
  for (const section of sections) {
    lines.push("", `#### ${section}`, "", "| case | tool | median | min | max | unit | ratio | failures | note |", "|---|---|--:|--:|--:|---|---|--:|---|");
    for (const row of rows.filter((candidate) => candidate.section === section)) {
      const ratios = row.ratios.map((ratio) => `${ratio.ratio.toFixed(2)}× ${shortName(ratio.baseline)}`).join(", ");
      lines.push(
        `| ${row.case} | ${row.tool} | ${formatNumber(row.median)} | ${formatNumber(row.min)} | ${formatNumber(row.max)} | ${row.unit} | ${ratios} | ${row.failures ?? ""} | ${row.note ?? ""} |`,
      );
    }
  }
  return lines.join("\n");
}

function shortName(tool: string): string {
  return tool.replace(/ \(16 × 255 KiB\)/, "").replace(/ \(new connection\)/, "");
}
