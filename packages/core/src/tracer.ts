/**
 * The contract between core and a tracer (`@tunnel-sh/tracer-otel`, `@tunnel-sh/tracer-console`).
 * One small interface for the spans of operations (commands, scripts, transfers) and of the pool's connection work.
 *
 * Span names used by tunnel: `tunnel.command`, `tunnel.script`, `tunnel.transfer`, `tunnel.connect`,
 * `tunnel.pool.acquire`. Attribute values are already redacted when they reach a tracer.
 */

export type AttributeValue = string | number | boolean | readonly string[] | readonly number[];
export type Attributes = Readonly<Record<string, AttributeValue | undefined>>;

export interface Tracer {
  /**
   * Start a span. `parent` nests it (e.g. a connect span under a command span).
   * MUST NOT throw; a tracer failure must never fail an operation.
   * @example const span = tracer.startSpan("tunnel.command", { "server.address": "web-1" });
   */
  startSpan(name: string, attributes?: Attributes, parent?: Span): Span;
}

export interface Span {
  setAttributes(attributes: Attributes): void;
  /** A point-in-time event, e.g. `retry` with `{ attempt: 2, delay_ms: 200 }`. */
  addEvent(name: string, attributes?: Attributes): void;
  /** Mark the span failed and record the error (a `TunnelError`'s code becomes `error.type`). */
  recordError(error: unknown): void;
  /** End the span. Idempotent. */
  end(): void;
}

const noopSpan: Span = {
  setAttributes() {},
  addEvent() {},
  recordError() {},
  end() {},
};

/** A tracer that records nothing. The default when none is injected. */
export class NoopTracer implements Tracer {
  startSpan(): Span {
    return noopSpan;
  }
}
