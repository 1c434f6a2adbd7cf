import { randomBytes } from "node:crypto";
import { ConfigError, Redactor, describeOptionValue, rejectUnknownOptions } from "@tunnel-sh/core";
import type { Attributes, AttributeValue, Span, SpanOptions, Tracer } from "@tunnel-sh/core";
import { formatJsonLine, formatPretty } from "./format.js";
import type { FinishedSpan } from "./format.js";

/** Where the tracer writes. `process.stdout`, `process.stderr` and any `Writable` fit. */
export interface ConsoleStream {
  write(chunk: string): unknown;
  /** Colour is on by default only when this is true. */
  readonly isTTY?: boolean | undefined;
  /** When `false` (a closed stream), output is dropped instead of written. */
  readonly writable?: boolean | undefined;
}

/**
 * How much is written.
 * - `error`: only operations (`tunnel.command`, `tunnel.script`, `tunnel.transfer`: spans without a parent) that
 *   failed — an error was recorded, or the command exited non-zero or was killed by a signal;
 * - `info`: every operation, with its events and errors, and failed pool spans without a parent (a warm-up connect);
 * - `debug`: also child spans (`tunnel.pool.acquire`, `tunnel.connect`) and the pool's own spans (`tunnel.pool.evict`).
 */
export type ConsoleLevel = "error" | "info" | "debug";

export interface ConsoleTracerOptions {
  /** Where lines go, e.g. `process.stdout`. The tracer never closes it. */
  readonly stream: ConsoleStream;
  /**
   * `pretty` (default): one readable line per finished operation, its events and errors indented below.
   * `json`: one JSON object per line per finished span, for log shippers.
   */
  readonly format?: "pretty" | "json";
  /** Default `info`. See `ConsoleLevel`. */
  readonly level?: ConsoleLevel;
  /** ANSI colours in `pretty` output. Default: `stream.isTTY`. Never used for `json`. */
  readonly colors?: boolean;
  /**
   * Removes secrets from every string attribute, event attribute and error message before output.
   * Share it with the executor so secrets registered there are removed here too.
   */
  readonly redactor?: Redactor;
  /**
   * Print `tunnel.command.text` (redacted). Default `true`: the console is the operator's own view. Set
   * `false` when JSON lines go to a shared log store and command lines may hold data that is not a secret
   * but still private.
   */
  readonly recordCommand?: boolean;
  /**
   * Print `tunnel.transfer.local_path` (the local file of a transfer, redacted). Default `false`: no local file
   * path is written unless asked; the remote path is always printed.
   */
  readonly recordLocalPaths?: boolean;
  /** Milliseconds since the epoch, fractional allowed. Default: `performance.timeOrigin + performance.now()`. */
  readonly clock?: () => number;
  /** Random bytes as lowercase hex, for trace and span ids. Default: `node:crypto` `randomBytes`. */
  readonly randomHex?: (bytes: number) => string;
}

const LEVELS: Record<ConsoleLevel, number> = { debug: 0, info: 1, error: 2 };

/** Every option name; `satisfies` makes the compiler refuse a list that misses one. */
const OPTIONS = Object.keys({
  stream: true,
  format: true,
  level: true,
  colors: true,
  redactor: true,
  recordCommand: true,
  recordLocalPaths: true,
  clock: true,
  randomHex: true,
} satisfies Record<keyof ConsoleTracerOptions, true>);

function validateOptions(options: ConsoleTracerOptions): void {
  if (options === undefined) throw new ConfigError("stream", "is required: ConsoleTracer needs { stream }");
  rejectUnknownOptions(options, OPTIONS, "ConsoleTracer");
  const values = options as unknown as Record<string, unknown>;
  if (typeof (options.stream as { write?: unknown } | undefined)?.write !== "function") {
    throw new ConfigError("stream", `must have a write() method, got ${describeOptionValue(values.stream)}`);
  }
  if (options.format !== undefined && options.format !== "pretty" && options.format !== "json") {
    throw new ConfigError("format", `must be "pretty" or "json", got ${describeOptionValue(values.format)}`);
  }
  if (options.level !== undefined && !Object.hasOwn(LEVELS, options.level)) {
    throw new ConfigError("level", `must be "debug", "info" or "error", got ${describeOptionValue(values.level)}`);
  }
  for (const field of ["colors", "recordCommand", "recordLocalPaths"] as const) {
    if (options[field] !== undefined && typeof options[field] !== "boolean") {
      throw new ConfigError(field, `must be true or false, got ${describeOptionValue(values[field])}`);
    }
  }
  for (const field of ["clock", "randomHex"] as const) {
    if (options[field] !== undefined && typeof options[field] !== "function") {
      throw new ConfigError(field, `must be a function, got ${describeOptionValue(values[field])}`);
    }
  }
  if (options.redactor !== undefined && typeof (options.redactor as { redact?: unknown }).redact !== "function") {
    throw new ConfigError("redactor", `must be a Redactor, got ${describeOptionValue(values.redactor)}`);
  }
}
/** Bounds memory for spans that stay open long or log in a loop. */
const MAX_EVENTS = 128;
const MAX_BUFFERED_CHILDREN = 64;

/**
 * A `Tracer` (from `@tunnel-sh/core`) that prints what tunnel does: readable lines for people, JSON lines for
 * log shippers. Every method is safe to call at any time and never throws; a failing stream loses output,
 * never an operation.
 *
 * @example
 * const tracer = new ConsoleTracer({ stream: process.stdout, format: "json" });
 * const executor = new Executor(pool, ProductionExecutorConfig(), tracer);
 */
export class ConsoleTracer implements Tracer {
  readonly #stream: ConsoleStream;
  readonly #format: "pretty" | "json";
  readonly #level: number;
  readonly #colors: boolean;
  readonly #redactor: Redactor;
  readonly #recordCommand: boolean;
  readonly #recordLocalPaths: boolean;
  readonly #clock: () => number;
  readonly #randomHex: (bytes: number) => string;
  readonly #spans = new WeakMap<Span, ConsoleSpan>();

  /** Throws `ConfigError` for an unknown option or a value of the wrong kind. */
  constructor(options: ConsoleTracerOptions) {
    validateOptions(options);
    this.#stream = options.stream;
    this.#format = options.format ?? "pretty";
    this.#level = LEVELS[options.level ?? "info"] ?? LEVELS.info;
    this.#colors = this.#format === "pretty" && (options.colors ?? options.stream.isTTY === true);
    this.#redactor = options.redactor ?? new Redactor();
    this.#recordCommand = options.recordCommand ?? true;
    this.#recordLocalPaths = options.recordLocalPaths ?? false;
    this.#clock = options.clock ?? (() => performance.timeOrigin + performance.now());
    this.#randomHex = options.randomHex ?? ((bytes) => randomBytes(bytes).toString("hex"));
  }

  startSpan(name: string, options?: SpanOptions): Span {
    try {
      const parent = options?.parent;
      const parentSpan = parent === undefined ? undefined : this.#spans.get(parent);
      const span = new ConsoleSpan(this, this.#redactor, {
        name,
        traceId: parentSpan?.data.traceId ?? this.#randomHex(16),
        spanId: this.#randomHex(8),
        parent: parentSpan,
        start: this.#clock(),
      });
      span.setAttributes(options?.attributes ?? {});
      this.#spans.set(span, span);
      return span;
    } catch {
      return NOOP_SPAN;
    }
  }

  /** @internal used by spans */
  clean(redactor: Redactor, attributes: Attributes | undefined): Record<string, AttributeValue> {
    const redacted = redactor.redactAttributes(attributes);
    if (!this.#recordCommand) delete redacted["tunnel.command.text"];
    if (!this.#recordLocalPaths) delete redacted["tunnel.transfer.local_path"];
    return redacted;
  }

  /** @internal */
  now(): number {
    return this.#clock();
  }

  /** @internal called once per span, at its end. */
  finished(span: ConsoleSpan): void {
    const data = span.data;
    const root = data.parent === undefined;
    const failed = data.errors.length > 0 || (root && isNonZeroExit(data.attributes));
    const severity = severityOf(data.name, root, failed);
    if (severity < this.#level) return;
    if (this.#format === "json") {
      this.#write(formatJsonLine(data, severity === LEVELS.error ? "error" : severity === LEVELS.info ? "info" : "debug"));
      return;
    }
    if (!root) {
      // Children end before their operation: keep them for the operation's block, or print at once if it is over.
      const rootSpan = span.root();
      if (!rootSpan.ended) {
        if (rootSpan.children.length < MAX_BUFFERED_CHILDREN) rootSpan.children.push(data);
        return;
      }
    }
    this.#write(formatPretty(data, root ? span.children : [], { colors: this.#colors }));
  }

  #write(text: string): void {
    try {
      if (this.#stream.writable === false) return;
      this.#stream.write(text);
    } catch {
      // Output is best effort; the operation goes on.
    }
  }
}

/**
 * Operations (root spans other than the pool's own, e.g. `tunnel.command`) are `info`, `error` when they failed.
 * Everything else — child spans, and the pool's root spans such as `tunnel.pool.evict` or a warm-up
 * `tunnel.connect` — is `debug`, except a pool root span that failed, which is `info`.
 */
function severityOf(name: string, root: boolean, failed: boolean): number {
  if (!root) return LEVELS.debug;
  const operation = !name.startsWith("tunnel.pool.") && name !== "tunnel.connect";
  if (operation) return failed ? LEVELS.error : LEVELS.info;
  return failed ? LEVELS.info : LEVELS.debug;
}

function isNonZeroExit(attributes: Readonly<Record<string, AttributeValue>>): boolean {
  const code = attributes["process.exit.code"];
  if (typeof code === "number" && code !== 0) return true;
  return typeof attributes["tunnel.exit.signal"] === "string" && attributes["tunnel.exit.signal"] !== "";
}

interface SpanStart {
  readonly name: string;
  readonly traceId: string;
  readonly spanId: string;
  readonly parent: ConsoleSpan | undefined;
  readonly start: number;
}

class ConsoleSpan implements Span {
  readonly data: FinishedSpan & { parent: ConsoleSpan | undefined };
  readonly children: FinishedSpan[] = [];
  ended = false;
  readonly redactor: Redactor;
  readonly #tracer: ConsoleTracer;

  constructor(tracer: ConsoleTracer, redactor: Redactor, start: SpanStart) {
    this.#tracer = tracer;
    this.redactor = redactor;
    this.data = {
      name: start.name,
      traceId: start.traceId,
      spanId: start.spanId,
      parentSpanId: start.parent?.data.spanId,
      parent: start.parent,
      start: start.start,
      end: start.start,
      attributes: {},
      events: [],
      droppedEvents: 0,
      errors: [],
    };
  }

  root(): ConsoleSpan {
    let current: ConsoleSpan = this;
    for (let depth = 0; depth < 32 && current.data.parent !== undefined; depth += 1) current = current.data.parent;
    return current;
  }

  setAttributes(attributes: Attributes | undefined): void {
    if (this.ended) return;
    try {
      Object.assign(this.data.attributes, this.#tracer.clean(this.redactor, attributes));
    } catch {
      // never throw from a tracer
    }
  }

  addEvent(name: string, attributes?: Attributes): void {
    if (this.ended) return;
    try {
      if (this.data.events.length >= MAX_EVENTS) {
        this.data.droppedEvents += 1;
        return;
      }
      this.data.events.push({ name, time: this.#tracer.now(), attributes: this.#tracer.clean(this.redactor, attributes) });
    } catch {
      // never throw from a tracer
    }
  }

  recordError(error: unknown): void {
    if (this.ended) return;
    try {
      if (this.data.errors.length < MAX_EVENTS) this.data.errors.push(this.redactor.redactError(error));
    } catch {
      // never throw from a tracer
    }
  }

  end(): void {
    if (this.ended) return;
    this.ended = true;
    try {
      this.data.end = this.#tracer.now();
      this.#tracer.finished(this);
    } catch {
      // never throw from a tracer
    }
  }
}

const NOOP_SPAN: Span = { setAttributes() {}, addEvent() {}, recordError() {}, end() {} };
