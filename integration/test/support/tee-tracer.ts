/**
 * A tracer that sends every span to several tracers (an application would pick one; a test watches several at
 * once), keeping the executor's redaction wrapper on the parents each tracer gets.
 */
import { redactSpan, spanRedactor, unwrapSpan } from "@tunnel-sh/core";
import type { Attributes, Span, Tracer } from "@tunnel-sh/core";

export class TeeTracer implements Tracer {
  constructor(private readonly tracers: readonly Tracer[]) {}

  startSpan(name: string, attributes?: Attributes, parent?: Span): Span {
    // The executor hands out its spans wrapped for redaction: find the tee behind the wrapper, and keep the wrapper's
    // redactor on the parent each tracer gets.
    const parents = (unwrapSpan(parent) as TeeSpan | undefined)?.spans;
    const redactor = spanRedactor(parent);
    const spans = this.tracers.map((tracer, index) => {
      const own = parents?.[index];
      return tracer.startSpan(name, attributes, own && redactor ? redactSpan(own, redactor) : own);
    });
    return new TeeSpan(spans);
  }
}

class TeeSpan implements Span {
  constructor(readonly spans: readonly Span[]) {}
  setAttributes(attributes: Attributes): void {
    for (const span of this.spans) span.setAttributes(attributes);
  }
  addEvent(name: string, attributes?: Attributes): void {
    for (const span of this.spans) span.addEvent(name, attributes);
  }
  recordError(error: unknown): void {
    for (const span of this.spans) span.recordError(error);
  }
  end(): void {
    for (const span of this.spans) span.end();
  }
}
