/**
 * Reads the "What is emitted" tables of a tracer package's README (spans, events, metrics), so a test can compare
 * what the README promises with what a real run emits.
 *
 * In an attributes cell every backticked dotted name is an attribute (`server.address`, `tunnel.attempts`); one
 * followed by `?` is conditional (set only when it applies), the others are on every span, event or data point
 * of that row. Backticked words without a dot are values (`upload`, `half-open`) and are ignored.
 */
import { readFileSync } from "node:fs";

export interface DocumentedAttribute {
  readonly name: string;
  /** Marked `?`: set only when it applies. */
  readonly conditional: boolean;
}

export interface DocumentedSpan {
  /** `undefined` for the row that applies to any span that failed. */
  readonly name: string | undefined;
  /** The `kind` column, when the table has one (`CLIENT`, `INTERNAL`). */
  readonly kind: string | undefined;
  readonly attributes: readonly DocumentedAttribute[];
}

export interface DocumentedEvent {
  readonly name: string;
  /** The spans it is added to; `undefined` for "any span that failed". */
  readonly spans: readonly string[] | undefined;
  readonly attributes: readonly DocumentedAttribute[];
}

export interface DocumentedMetric {
  readonly name: string;
  /** `histogram`, `counter` or `observable gauge`. */
  readonly type: string;
  readonly unit: string;
  readonly attributes: readonly DocumentedAttribute[];
}

export interface TracerReadme {
  readonly spans: readonly DocumentedSpan[];
  readonly events: readonly DocumentedEvent[];
  readonly metrics: readonly DocumentedMetric[];
}

const DOTTED = /`([a-z][a-z0-9_-]*(?:\.[a-z0-9_-]+)+)`(\?)?/g;

/** The attributes named in a table cell. */
export function attributesOf(cell: string): DocumentedAttribute[] {
  return [...cell.matchAll(DOTTED)].map((match) => ({ name: match[1] as string, conditional: match[2] === "?" }));
}

function namesOf(cell: string): string[] {
  return [...cell.matchAll(DOTTED)].map((match) => match[1] as string);
}

/** The body rows of the first table whose header row starts with `firstHeader`, as cells. */
export function tableRows(markdown: string, firstHeader: string): { readonly header: readonly string[]; readonly rows: readonly string[][] } {
  const lines = markdown.split("\n");
  const cellsOf = (line: string): string[] =>
    line
      .trim()
      .replace(/^\|/, "")
      .replace(/\|$/, "")
      .split("|")
      .map((cell) => cell.trim());
  const start = lines.findIndex((line) => line.startsWith("|") && cellsOf(line)[0] === firstHeader);
  if (start < 0) throw new Error(`no table with a "${firstHeader}" column`);
  const header = cellsOf(lines[start] as string);
  const rows: string[][] = [];
  for (let index = start + 2; index < lines.length && (lines[index] as string).startsWith("|"); index++) {
    const cells = cellsOf(lines[index] as string);
    if (cells.length !== header.length) throw new Error(`row ${index + 1} has ${cells.length} cells, the header ${header.length}`);
    rows.push(cells);
  }
  return { header, rows };
}

export function readTracerReadme(path: string): TracerReadme {
  const markdown = readFileSync(path, "utf8");
  const spanTable = tableRows(markdown, "span");
  const kindColumn = spanTable.header.indexOf("kind");
  const spans = spanTable.rows.map((cells): DocumentedSpan => {
    const name = namesOf(cells[0] as string)[0];
    return {
      name,
      kind: kindColumn >= 0 && cells[kindColumn] !== "" ? cells[kindColumn] : undefined,
      attributes: attributesOf(cells[cells.length - 1] as string),
    };
  });
  const events = tableRows(markdown, "event").rows.map((cells): DocumentedEvent => {
    const spanNames = namesOf(cells[1] as string);
    return {
      name: namesOf(cells[0] as string)[0] ?? (cells[0] as string).replace(/`/g, ""),
      spans: spanNames.length > 0 ? spanNames : undefined,
      attributes: attributesOf(cells[2] as string),
    };
  });
  let metrics: DocumentedMetric[] = [];
  if (markdown.includes("| instrument |")) {
    metrics = tableRows(markdown, "instrument").rows.map((cells) => ({
      name: namesOf(cells[0] as string)[0] as string,
      type: cells[1] as string,
      unit: (cells[2] as string).replace(/`/g, ""),
      attributes: attributesOf(cells[3] as string),
    }));
  }
  return { spans, events, metrics };
}
