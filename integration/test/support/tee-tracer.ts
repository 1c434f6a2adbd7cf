/**
 * A tracer that sends every span to several tracers (an application would pick one; a test watches several at
 * once). Each tracer gets, as parent, the span it made itself under the tee's parent.
 */
import type { Attributes, Span, SpanOptions, Tracer } from "@tunnel-sh/core";

export class TeeTracer implements Tracer {
  constructor(private readonly tracers: readonly Tracer[]) {}

  startSpan(name: string, options?: SpanOptions): Span {
    const parent = options?.parent;
    const parents = parent instanceof TeeSpan ? parent.spans : undefined;
    const attributes = options?.attributes;
    const spans = this.tracers.map((tracer, index) => {
      const own = parents?.[index];
      return tracer.startSpan(name, { ...(attributes !== undefined ? { attributes } : {}), ...(own !== undefined ? { parent: own } : {}) });
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
