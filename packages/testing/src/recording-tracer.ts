/**
 * A `Tracer` that keeps every span in memory, for tests that assert what an operation traced. It is written from
 * core's tracer contract alone: it nests by the spans it handed out and does no redaction, so a secret found in
 * it is one tunnel failed to redact.
 *
 * @example
 * const tracer = new RecordingTracer();
 * await executor.runCommand({ host, cmd: "true" });
 * expect(tracer.find("tunnel.command")).toMatchObject({ ended: true, errors: [] });
 */
import type { Attributes, AttributeValue, Span, SpanOptions, Tracer } from "@tunnel-sh/core";

export interface RecordedEvent {
  readonly name: string;
  readonly attributes: Readonly<Record<string, AttributeValue>>;
}

/** One recorded span. Its methods are the `Span` interface; its fields are what was recorded so far. */
export class RecordedSpan implements Span {
  readonly name: string;
  /** Every attribute set at start or later, merged (later values win; `undefined` values are left out). */
  readonly attributes: Record<string, AttributeValue> = {};
  readonly events: RecordedEvent[] = [];
  /** Every error passed to `recordError`, in order. */
  readonly errors: unknown[] = [];
  /** The parent span, when it was started with one of this tracer's spans as parent. */
  readonly parent: RecordedSpan | undefined;
  #ended = false;
  #endCalls = 0;

  constructor(name: string, attributes: Attributes | undefined, parent: RecordedSpan | undefined) {
    this.name = name;
    this.parent = parent;
    merge(this.attributes, attributes);
  }

  get ended(): boolean {
    return this.#ended;
  }

  /** How many times `end()` was called (ending is idempotent; a test may still want to know). */
  get endCalls(): number {
    return this.#endCalls;
  }

  setAttributes(attributes: Attributes): void {
    merge(this.attributes, attributes);
  }

  addEvent(name: string, attributes?: Attributes): void {
    const recorded: Record<string, AttributeValue> = {};
    merge(recorded, attributes);
    this.events.push({ name, attributes: recorded });
  }

  recordError(error: unknown): void {
    this.errors.push(error);
  }

  end(): void {
    this.#endCalls += 1;
    this.#ended = true;
  }
}

function merge(into: Record<string, AttributeValue>, attributes: Attributes | undefined): void {
  if (!attributes) return;
  for (const [key, value] of Object.entries(attributes)) if (value !== undefined) into[key] = value;
}

export class RecordingTracer implements Tracer {
  /** Every span started, in start order. */
  readonly spans: RecordedSpan[] = [];

  startSpan(name: string, options?: SpanOptions): RecordedSpan {
    const parent = options?.parent;
    const span = new RecordedSpan(name, options?.attributes, parent instanceof RecordedSpan ? parent : undefined);
    this.spans.push(span);
    return span;
  }

  /** The first span with this name, or undefined. */
  find(name: string): RecordedSpan | undefined {
    return this.spans.find((span) => span.name === name);
  }

  /** Every span with this name. */
  named(name: string): RecordedSpan[] {
    return this.spans.filter((span) => span.name === name);
  }

  /** The spans whose parent is `span`. */
  childrenOf(span: RecordedSpan): RecordedSpan[] {
    return this.spans.filter((candidate) => candidate.parent === span);
  }

  /** Spans started but not ended (a leak, usually). */
  open(): RecordedSpan[] {
    return this.spans.filter((span) => !span.ended);
  }

  /** Forget every span. */
  clear(): void {
    this.spans.length = 0;
  }
}
