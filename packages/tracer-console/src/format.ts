import type { AttributeValue, ErrorSummary } from "@tunnel-sh/core";

/** A span as the console tracer keeps it; every string in it is already redacted. */
export interface FinishedSpan {
  readonly name: string;
  readonly traceId: string;
  readonly spanId: string;
  readonly parentSpanId: string | undefined;
  /** Milliseconds since the epoch. */
  readonly start: number;
  end: number;
  readonly attributes: Record<string, AttributeValue>;
  readonly events: { readonly name: string; readonly time: number; readonly attributes: Record<string, AttributeValue> }[];
  droppedEvents: number;
  readonly errors: ErrorSummary[];
}

const ANSI = { reset: "\x1b[0m", bold: "\x1b[1m", dim: "\x1b[2m", red: "\x1b[31m", green: "\x1b[32m", yellow: "\x1b[33m", cyan: "\x1b[36m" };
type Paint = (color: keyof typeof ANSI, text: string) => string;

/** One JSON object (and a newline) per span. */
export function formatJsonLine(span: FinishedSpan, level: "error" | "info" | "debug"): string {
  const last = span.errors[span.errors.length - 1];
  const record: Record<string, unknown> = {
    time: new Date(span.end).toISOString(),
    level,
    name: span.name,
    traceId: span.traceId,
    spanId: span.spanId,
    parentSpanId: span.parentSpanId ?? null,
    start: new Date(span.start).toISOString(),
    durationMs: round(span.end - span.start),
    status: span.errors.length > 0 ? "error" : "ok",
    attributes: span.attributes,
    events: span.events.map((event) => ({
      name: event.name,
      time: new Date(event.time).toISOString(),
      attributes: event.attributes,
    })),
  };
  if (span.droppedEvents > 0) record["droppedEvents"] = span.droppedEvents;
  if (last) {
    record["error"] = {
      type: last.type,
      code: last.code,
      name: last.name,
      message: last.message,
      phase: last.phase,
      retryable: last.retryable,
      target: last.target,
      cause: last.cause,
    };
  }
  if (span.errors.length > 1) record["errorCount"] = span.errors.length;
  return `${JSON.stringify(record)}\n`;
}

/**
 * A readable block: the operation's line, its events and errors indented by four spaces, then (at debug level)
 * its child spans as a tree, two spaces per level, each with their own events and errors.
 * @example "✓ deploy@web-1:22  command  systemctl status nginx  exit 0  12 ms  1 attempt\n"
 */
export function formatPretty(span: FinishedSpan, children: readonly FinishedSpan[], options: { readonly colors: boolean }): string {
  const paint: Paint = options.colors ? (color, text) => `${ANSI[color]}${text}${ANSI.reset}` : (_color, text) => text;
  const lines = [headline(span, paint, "")];
  lines.push(...details(span, paint, "    "));
  const visit = (parentSpanId: string, depth: number): void => {
    if (depth > 8) return;
    const level = children.filter((child) => child.parentSpanId === parentSpanId).sort((a, b) => a.start - b.start);
    for (const child of level) {
      const indent = "  ".repeat(depth);
      lines.push(headline(child, paint, indent));
      lines.push(...details(child, paint, `${indent}    `));
      visit(child.spanId, depth + 1);
    }
  };
  visit(span.spanId, 1);
  return `${lines.join("\n")}\n`;
}

function headline(span: FinishedSpan, paint: Paint, indent: string): string {
  const attributes = span.attributes;
  const failed = span.errors.length > 0 || exitFailed(attributes);
  const marker = failed ? paint("red", "✗") : paint("green", "✓");
  const parts: string[] = [];
  const host = hostOf(attributes);
  if (host) parts.push(paint("bold", host));
  parts.push(paint("cyan", span.name.replace(/^tunnel\./, "")));
  parts.push(...describe(span.name, attributes).map(printable));
  const outcome = outcomeOf(span);
  if (outcome) parts.push(failed ? paint("red", outcome) : outcome);
  parts.push(paint("dim", duration(span.end - span.start)));
  const attempts = attributes["tunnel.attempts"];
  if (typeof attempts === "number") parts.push(paint(attempts > 1 ? "yellow" : "dim", `${attempts} attempt${attempts === 1 ? "" : "s"}`));
  return `${indent}${marker} ${parts.join("  ")}`;
}

function details(span: FinishedSpan, paint: Paint, indent: string): string[] {
  const lines = span.events.map((event) => {
    const offset = paint("dim", `+${duration(event.time - span.start)}`);
    const text = printable(describeEvent(event.name, event.attributes));
    return `${indent}${offset}  ${event.name === "tunnel.retry" ? paint("yellow", text) : text}`;
  });
  if (span.droppedEvents > 0) lines.push(`${indent}${paint("dim", `(${span.droppedEvents} more events dropped)`)}`);
  for (const error of span.errors) {
    const cause = error.cause ? `  (cause: ${error.cause.message})` : "";
    lines.push(`${indent}${paint("red", `✗ ${error.type}`)}  ${printable(error.message + cause)}`);
  }
  return lines;
}

function exitFailed(attributes: Readonly<Record<string, AttributeValue>>): boolean {
  const code = attributes["process.exit.code"];
  const signal = attributes["tunnel.exit.signal"];
  return (typeof code === "number" && code !== 0) || (typeof signal === "string" && signal !== "");
}

function hostOf(attributes: Readonly<Record<string, AttributeValue>>): string | undefined {
  for (const name of ["tunnel.connection.key"]) {
    const key = attributes[name];
    if (typeof key === "string" && key !== "") return printable(key);
  }
  const host = attributes["server.address"];
  if (typeof host !== "string") return undefined;
  const user = attributes["tunnel.user"];
  const port = attributes["server.port"];
  return printable(`${typeof user === "string" ? `${user}@` : ""}${host}${port !== undefined ? `:${String(port)}` : ""}`);
}

function describe(name: string, attributes: Readonly<Record<string, AttributeValue>>): string[] {
  const parts: string[] = [];
  const text = (key: string): string | undefined => {
    const value = attributes[key];
    return typeof value === "string" && value !== "" ? value : undefined;
  };
  const number = (key: string): number | undefined => {
    const value = attributes[key];
    return typeof value === "number" ? value : undefined;
  };
  switch (name) {
    case "tunnel.command": {
      const command = text("tunnel.command.text");
      if (command) parts.push(attributes["tunnel.command.sudo"] === true ? `sudo ${command}` : command);
      else if (attributes["tunnel.command.sudo"] === true) parts.push("sudo");
      break;
    }
    case "tunnel.script": {
      const interpreter = text("tunnel.script.interpreter");
      if (interpreter) parts.push(attributes["tunnel.command.sudo"] === true ? `sudo ${interpreter}` : interpreter);
      const args = number("tunnel.script.args_count");
      if (args !== undefined) parts.push(`${args} arg${args === 1 ? "" : "s"}`);
      const size = number("tunnel.script.size");
      if (size !== undefined) parts.push(bytes(size));
      break;
    }
    case "tunnel.transfer": {
      const direction = text("tunnel.transfer.direction");
      const local = text("tunnel.transfer.local_path");
      const remote = text("tunnel.transfer.remote_path");
      if (direction) parts.push(direction);
      if (local && remote) parts.push(direction === "download" ? `${remote} → ${local}` : `${local} → ${remote}`);
      else if (remote) parts.push(remote);
      const size = number("tunnel.transfer.bytes");
      if (size !== undefined) parts.push(bytes(size));
      const files = number("tunnel.transfer.files");
      if (files !== undefined && files !== 1) parts.push(`${files} files`);
      const rate = number("tunnel.transfer.rate");
      if (rate !== undefined) parts.push(`${bytes(rate)}/s`);
      const verify = text("tunnel.transfer.verify");
      if (verify && verify !== "none") parts.push(attributes["tunnel.transfer.verified"] === true ? `${verify} verified` : `${verify} not verified`);
      break;
    }
    case "tunnel.pool.acquire": {
      const wait = number("tunnel.pool.wait_time");
      if (wait !== undefined) parts.push(`waited ${duration(wait * 1000)}`);
      if (attributes["tunnel.pool.connected"] === true) parts.push("new connection");
      else if (attributes["tunnel.pool.connected"] === false) parts.push("reused connection");
      break;
    }
    case "tunnel.connect": {
      const transport = text("tunnel.transport");
      if (transport) parts.push(`via ${transport}`);
      break;
    }
    default:
      break;
  }
  return parts;
}

function outcomeOf(span: FinishedSpan): string | undefined {
  const last = span.errors[span.errors.length - 1];
  if (last) return last.type;
  const signal = span.attributes["tunnel.exit.signal"];
  if (typeof signal === "string" && signal !== "") return `signal ${signal}`;
  const code = span.attributes["process.exit.code"];
  if (typeof code === "number") return `exit ${code}`;
  return undefined;
}

function describeEvent(name: string, attributes: Readonly<Record<string, AttributeValue>>): string {
  switch (name) {
    case "tunnel.retry": {
      const attempt = attributes["tunnel.attempt"];
      const delay = attributes["tunnel.retry.delay"];
      const type = attributes["error.type"];
      let text = "retry";
      if (attempt !== undefined) text += `  attempt ${String(attempt)}`;
      if (typeof delay === "number") text += ` in ${duration(delay * 1000)}`;
      if (type !== undefined) text += `  after ${String(type)}`;
      return text;
    }
    case "tunnel.breaker.state": {
      const state = attributes["tunnel.breaker.state"];
      const key = attributes["tunnel.connection.key"];
      return `circuit breaker ${String(state ?? "changed")}${key !== undefined ? `  ${String(key)}` : ""}`;
    }
    case "tunnel.sudo.prompt_answered":
      return "sudo prompt answered";
    case "tunnel.sudo.released":
      return "sudo let the command through";
    case "tunnel.hop.ready": {
      const address = attributes["server.address"];
      const port = attributes["server.port"];
      const where = address === undefined ? "" : `  ${String(address)}${port === undefined ? "" : `:${String(port)}`}`;
      return `${attributes["tunnel.hop.jump"] === true ? "jump host" : "host"} ready${where}`;
    }
    case "tunnel.command.completed": {
      const signal = attributes["tunnel.exit.signal"];
      const code = attributes["process.exit.code"];
      if (typeof signal === "string" && signal !== "") return `completed  signal ${signal}`;
      return code === undefined ? "completed" : `completed  exit ${String(code)}`;
    }
    default: {
      const pairs = Object.entries(attributes).map(([key, value]) => `${key}=${Array.isArray(value) ? value.join(",") : String(value)}`);
      return [name.replace(/^tunnel\./, ""), ...pairs].join("  ");
    }
  }
}

/** Control characters (including ANSI escapes from remote output) shown escaped, so one item stays one line. */
function printable(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\u0000-\u001f\u007f]/g, (character) => {
    if (character === "\n") return "\\n";
    if (character === "\r") return "\\r";
    if (character === "\t") return "\\t";
    return `\\x${character.charCodeAt(0).toString(16).padStart(2, "0")}`;
  });
}

/** `0.4 ms`, `12 ms`, `3.2 s`, `2m 03s`. */
export function duration(milliseconds: number): string {
  const ms = Math.max(0, milliseconds);
  if (ms < 1) return `${ms.toFixed(1)} ms`;
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const minutes = Math.floor(ms / 60_000);
  const seconds = Math.floor((ms % 60_000) / 1000);
  return `${minutes}m ${String(seconds).padStart(2, "0")}s`;
}

/** `512 B`, `1.5 KiB`, `12.0 MiB`. */
export function bytes(count: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = count;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return unit === 0 ? `${Math.round(value)} B` : `${value.toFixed(1)} ${units[unit]}`;
}

function round(value: number, digits = 3): number {
  const factor = 10 ** digits;
  return Math.round(value * factor) / factor;
}
