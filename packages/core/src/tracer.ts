/**
 * The contract between core and a tracer (`@tunnel-sh/tracer-otel`, `@tunnel-sh/tracer-console`): one small
 * interface for the executor's operations, the pool and the transports alike.
 *
 * Span names used by tunnel: `tunnel.command`, `tunnel.script`, `tunnel.transfer` (operations),
 * `tunnel.pool.acquire`, `tunnel.connect`, `tunnel.pool.evict` (the pool) and `tunnel.breaker` (a circuit
 * breaker's state change). Attribute names follow the OpenTelemetry semantic conventions where one exists
 * (`server.address`, `process.exit.code`, `error.type`) and are under `tunnel.*` otherwise; durations are in
 * seconds; no attribute holds a local file path except `tunnel.transfer.local_path`, which tracers drop unless
 * asked. The tracer packages' READMEs list every span, attribute and event. Attribute values are already
 * redacted when they reach a tracer.
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
  /** A point-in-time event, e.g. `tunnel.retry` with `{ "tunnel.attempt": 2, "tunnel.retry.delay": 0.2 }`. */
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
