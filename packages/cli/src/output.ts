/**
 * What the CLI prints: live `name | line` output, the summary table, and the `--json` document.
 */
import type { ErrorCode, ErrorPhase } from "@tunnel-sh/core";

/** Where the CLI writes. `process.stdout` / `process.stderr` fit. */
export interface OutputStream {
  write(chunk: string): unknown;
  readonly isTTY?: boolean | undefined;
  readonly columns?: number | undefined;
}

/** What happened on one host. */
export interface HostOutcome {
  readonly name: string;
  /** `user@host:port` as far as tunnel knows it (parts the transport decides are left out). */
  readonly target: string;
  /** The command exited 0 / the transfer completed. */
  readonly ok: boolean;
  /** Exit code of a command or script; `null` when killed by a signal, when it never ran, and for transfers. */
  readonly exitCode: number | null;
  readonly signal: string | null;
  readonly durationMs: number;
  readonly attempts: number;
  readonly stdout?: string;
  readonly stderr?: string;
  readonly truncated?: boolean;
  readonly transfer?: {
    readonly source: string;
    readonly destination: string;
    readonly bytes: number;
    readonly files: number;
    readonly verified: boolean;
    readonly skipped: number;
  };
  /**
   * Why the host failed before or while running (connection, authentication, timeout, abort, transfer, ...), or
   * `SKIPPED` when it never started because the `--max-fail` budget was spent before its turn.
   */
  readonly error?: {
    readonly code: ErrorCode | "ERROR" | "SKIPPED";
    readonly message: string;
    readonly phase: ErrorPhase | undefined;
    readonly retryable: boolean;
  };
}

/** Exit statuses of `tunnel`; `EXIT_STATUSES` says what each means. */
export const ExitCode = {
  OK: 0,
  COMMAND_FAILED: 1,
  USAGE: 2,
  HOST_FAILED: 3,
  INTERNAL: 4,
  INTERRUPTED: 130,
  /** Reported by the executable instead of 130 when its output pipe closed (SIGPIPE's 128 + 13). */
  OUTPUT_CLOSED: 141,
  /** Reported by the executable instead of 130 when SIGTERM interrupted it (128 + 15). */
  TERMINATED: 143,
} as const;

/** Every exit status of `tunnel` and what it means, in order: `tunnel --help` prints it, and the README's table matches it. */
export const EXIT_STATUSES: ReadonlyArray<{ readonly status: number; readonly meaning: string }> = [
  { status: ExitCode.OK, meaning: "every host succeeded" },
  { status: ExitCode.COMMAND_FAILED, meaning: "every host was reached, and on at least one the command or script exited non-zero (or was killed by a signal)" },
  { status: ExitCode.USAGE, meaning: "usage error: bad options, host list or inventory; nothing ran" },
  {
    status: ExitCode.HOST_FAILED,
    meaning:
      "at least one host failed otherwise (connection, authentication, host key, timeout, sudo or transfer error) or was not started because the --max-fail budget was spent",
  },
  { status: ExitCode.INTERNAL, meaning: "an unexpected internal error (a bug: please report it)" },
  { status: ExitCode.INTERRUPTED, meaning: "interrupted by Ctrl-C (SIGINT): every running operation was cancelled and its remote process stopped" },
  { status: ExitCode.OUTPUT_CLOSED, meaning: "interrupted because the reader of tunnel's output went away, as in `tunnel run ... | head`" },
  { status: ExitCode.TERMINATED, meaning: "interrupted by SIGTERM" },
];

/** The exit status for a set of outcomes (see `ExitCode`). */
export function exitCodeFor(outcomes: readonly HostOutcome[], interrupted = false): number {
  if (interrupted) return ExitCode.INTERRUPTED;
  if (outcomes.some((outcome) => outcome.error !== undefined)) return ExitCode.HOST_FAILED;
  if (outcomes.some((outcome) => !outcome.ok)) return ExitCode.COMMAND_FAILED;
  return ExitCode.OK;
}

/** `850ms`, `1.25s`, `2m05s`. */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)}ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(2)}s`;
  const seconds = Math.round(ms / 1000);
  return `${Math.floor(seconds / 60)}m${String(seconds % 60).padStart(2, "0")}s`;
}

/** `512 B`, `1.5 KiB`, `3.2 MiB`. */
export function formatBytes(bytes: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return unit === 0 ? `${value} B` : `${value.toFixed(1)} ${units[unit]}`;
}

const COLORS = [36, 35, 33, 32, 34, 96, 95, 93, 92, 94];

/** Whether to colour a stream: a TTY, and neither `NO_COLOR` nor `TERM=dumb`. */
export function useColor(stream: OutputStream, env: Readonly<Record<string, string | undefined>>): boolean {
  return stream.isTTY === true && env.NO_COLOR === undefined && env.TERM !== "dumb";
}

/**
 * Splits a host's output into lines and writes each as `name | line`, names padded to the same width.
 * Partial lines wait for their newline (or `flush`), so lines from different hosts never mix.
 */
export class PrefixWriter {
  readonly #width: number;
  readonly #colors: ReadonlyMap<string, number> | undefined;
  readonly #pending = new Map<string, string>();

  constructor(names: readonly string[], color: boolean) {
    this.#width = Math.max(0, ...names.map((name) => name.length));
    this.#colors = color ? new Map(names.map((name, index) => [name, COLORS[index % COLORS.length] ?? 36])) : undefined;
  }

  /** The prefix for `name`, e.g. `web-1 | `. */
  prefix(name: string): string {
    const padded = name.padEnd(this.#width);
    const color = this.#colors?.get(name);
    return color === undefined ? `${padded} | ` : `\u001b[${color}m${padded}\u001b[0m | `;
  }

  /** Write `text` from `name`'s `channel` (e.g. "stdout") to `stream`, whole lines only. */
  write(stream: OutputStream, name: string, channel: string, text: string): void {
    const key = `${channel}\u0000${name}`;
    const buffered = (this.#pending.get(key) ?? "") + text;
    const lines = buffered.split("\n");
    const rest = lines.pop() ?? "";
    if (rest === "") this.#pending.delete(key);
    else this.#pending.set(key, rest);
    if (lines.length === 0) return;
    stream.write(lines.map((line) => `${this.prefix(name)}${line.replace(/\r$/, "")}\n`).join(""));
  }

  /** Write what is left of `name`'s `channel` as a last line. */
  flush(stream: OutputStream, name: string, channel: string): void {
    const key = `${channel}\u0000${name}`;
    const rest = this.#pending.get(key);
    this.#pending.delete(key);
    if (rest !== undefined && rest !== "") stream.write(`${this.prefix(name)}${rest.replace(/\r$/, "")}\n`);
  }
}

function exitColumn(outcome: HostOutcome): string {
  if (outcome.error) return "-";
  if (outcome.transfer) return "ok";
  if (outcome.signal) return outcome.signal;
  return String(outcome.exitCode ?? "-");
}

/** One line of text: newlines in messages would break the table. */
function oneLine(text: string): string {
  return text.replace(/\s*\n\s*/g, " ").trim();
}

/**
 * The summary table: host, exit, duration, attempts, error — then a count line.
 * @example
 * HOST   EXIT  DURATION  ATTEMPTS  ERROR
 * web-1  0     120ms     1
 * web-2  -     1.52s     3         CONNECT: connect ECONNREFUSED 127.0.0.1:1
 * 2 hosts: 1 ok, 1 failed
 */
export function formatSummary(outcomes: readonly HostOutcome[]): string {
  const header = ["HOST", "EXIT", "DURATION", "ATTEMPTS", "ERROR"];
  const rows = outcomes.map((outcome) => [
    outcome.name,
    exitColumn(outcome),
    formatDuration(outcome.durationMs),
    String(outcome.attempts),
    outcome.error
      ? `${outcome.error.code}: ${oneLine(outcome.error.message)}`
      : outcome.ok
        ? ""
        : outcome.signal
          ? `killed by ${outcome.signal}`
          : `exit ${outcome.exitCode}`,
  ]);
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => (row[column] ?? "").length)));
  const render = (row: readonly string[]) =>
    row
      .map((cell, column) => (column === row.length - 1 ? cell : cell.padEnd(widths[column] ?? 0)))
      .join("  ")
      .trimEnd();
  const skipped = outcomes.filter((outcome) => outcome.error?.code === "SKIPPED").length;
  const failed = outcomes.filter((outcome) => !outcome.ok).length - skipped;
  const count = `${outcomes.length} host${outcomes.length === 1 ? "" : "s"}: ${outcomes.length - failed - skipped} ok, ${failed} failed${skipped > 0 ? `, ${skipped} not started` : ""}`;
  return [render(header), ...rows.map(render), count].join("\n") + "\n";
}

/** The `--json` document. */
export interface JsonReport {
  readonly command: string;
  readonly ok: boolean;
  readonly exitCode: number;
  readonly interrupted: boolean;
  readonly hosts: readonly HostOutcome[];
}

export function formatJson(command: string, outcomes: readonly HostOutcome[], interrupted: boolean): string {
  const exitCode = exitCodeFor(outcomes, interrupted);
  const report: JsonReport = { command, ok: exitCode === 0, exitCode, interrupted, hosts: outcomes };
  return `${JSON.stringify(report, null, 2)}\n`;
}
