/**
 * The contract between core and a tracer (`@tunnel-sh/tracer-otel`, `@tunnel-sh/tracer-console`, or one of
 * your own): one small interface for the executor's operations, the pool and the transports alike. A tracer
 * written from this file alone, importing nothing from tunnel but these types, nests spans correctly and
 * never sees a secret.
 *
 * Span names used by tunnel: `tunnel.command`, `tunnel.script`, `tunnel.transfer` (operations),
 * `tunnel.pool.acquire`, `tunnel.connect`, `tunnel.pool.evict` (the pool) and `tunnel.breaker` (a circuit
 * breaker's state change). Attribute names follow the OpenTelemetry semantic conventions where one exists
 * (`server.address`, `process.exit.code`, `error.type`) and are under `tunnel.*` otherwise; durations are in
 * seconds; no attribute holds a local file path except `tunnel.transfer.local_path`. The tracer packages'
 * READMEs list every span, attribute and event.
 *
 * What tunnel guarantees to every tracer (tunnel's packages open spans only through core's `startSpan`
 * helper, which keeps these promises; a pool or transport written for tunnel MUST do the same):
 * - Every string in an attribute, an event attribute or a recorded error has its secrets (sudo passwords,
 *   authentication passwords, key passphrases, values registered on the executor's `Redactor`) replaced with
 *   `[REDACTED]` before the tracer receives it. A tracer needs no redaction of its own to keep them out.
 * - `parent` is either absent or a span this same tracer returned from `startSpan`, never a wrapper and never
 *   another tracer's span, so a tracer nests by looking up the object it handed out.
 * - Span methods are called on the span object the tracer returned, and `end()` is called once per span
 *   (a tracer still MUST tolerate more calls).
 */

export type AttributeValue = string | number | boolean | readonly string[] | readonly number[];
export type Attributes = Readonly<Record<string, AttributeValue | undefined>>;

/** The second argument of `Tracer.startSpan`. */
export interface SpanOptions {
  /**
   * The span's first attributes, already redacted. Values are never `undefined` when tunnel starts a span; a
   * tracer SHOULD skip `undefined` values anyway. A tracer SHOULD leave `tunnel.transfer.local_path` out of
   * anything it exports unless its user asked for local paths.
   */
  readonly attributes?: Attributes;
  /**
   * The span to nest under: a span this tracer returned earlier (a `tunnel.pool.acquire` under a
   * `tunnel.command`, a `tunnel.connect` under that acquire). Absent for a root span. A tracer MUST treat a
   * value it does not recognise as absent, without throwing.
   */
  readonly parent?: Span;
}

export interface Tracer {
  /**
   * Start a span and return it; tunnel calls the returned object's methods and passes that same object back
   * as `parent` of the spans under it. MUST NOT throw: a tracer failure must never fail an operation.
   * @example const span = tracer.startSpan("tunnel.pool.acquire", { attributes: { "tunnel.connection.key": "deploy@web-1:22" }, parent });
   */
  startSpan(name: string, options?: SpanOptions): Span;
}

/** One span, as a tracer implements it. Every method MUST NOT throw. */
export interface Span {
  /** Add or overwrite attributes (already redacted); later values win. */
  setAttributes(attributes: Attributes): void;
  /**
   * A point-in-time event, e.g. `tunnel.retry` with `{ "tunnel.attempt": 2, "tunnel.retry.delay": 0.2 }`;
   * its attributes are already redacted.
   */
  addEvent(name: string, attributes?: Attributes): void;
  /**
   * Mark the span failed and record the error. The error's message, stack, string fields and causes are
   * already redacted and its class is kept, so a `TunnelError`'s `code` can become `error.type`.
   */
  recordError(error: unknown): void;
  /** End the span. MUST be idempotent. */
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
