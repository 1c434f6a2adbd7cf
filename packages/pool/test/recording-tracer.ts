import type { Attributes, Span, Tracer } from "@tunnel-sh/core";

export interface RecordedSpan {
  readonly name: string;
  readonly parent: Span | undefined;
  /** The span object handed out, to compare with another record's `parent`. */
  span: Span | undefined;
  attributes: Record<string, unknown>;
  readonly events: { readonly name: string; readonly attributes: Attributes | undefined }[];
  readonly errors: unknown[];
  ended: boolean;
}

/** Keeps every span in memory so tests can assert names, attributes, events and errors. */
export class RecordingTracer implements Tracer {
  readonly spans: RecordedSpan[] = [];

  startSpan(name: string, attributes: Attributes = {}, parent?: Span): Span {
    const record: RecordedSpan = { name, parent, span: undefined, attributes: { ...attributes }, events: [], errors: [], ended: false };
    this.spans.push(record);
    record.span = {
      setAttributes: (more) => Object.assign(record.attributes, more),
      addEvent: (event, eventAttributes) => record.events.push({ name: event, attributes: eventAttributes }),
      recordError: (error) => record.errors.push(error),
      end: () => {
        record.ended = true;
      },
    };
    return record.span;
  }

  named(name: string): RecordedSpan[] {
    return this.spans.filter((span) => span.name === name);
  }
}
