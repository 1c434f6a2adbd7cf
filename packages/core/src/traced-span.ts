/**
 * How tunnel's packages open spans: the one place between them and a `Tracer`.
 *
 * The executor, the pool and anything else that traces call `startSpan(tracer, name, { attributes, parent,
 * redactor })` instead of `tracer.startSpan`. The span it returns redacts every attribute, event attribute and
 * recorded error with its own redactor and every ancestor's before the tracer sees them, and when it is handed
 * on as `parent` (the executor's operation span to the pool, the pool's connect span to a transport), the child
 * is started with the tracer's own span as parent. So a tracer only ever receives what `tracer.ts` promises:
 * redacted values, and a parent it returned itself.
 *
 * @example
 * const operation = startSpan(tracer, "tunnel.command", { attributes: { "server.address": "web-1" }, redactor: redactor.child([sudoPassword]) });
 * const lease = await pool.acquire(target, { parentSpan: operation });
 * // inside the pool:
 * const acquire = startSpan(this.tracer, "tunnel.pool.acquire", { attributes, parent: options.parentSpan });
 */
import type { Redactor } from "./redact.js";
import { NoopTracer } from "./tracer.js";
import type { Attributes, AttributeValue, Span, Tracer } from "./tracer.js";

/** What a span needs from a redactor; a `Redactor` of any installed copy of core has it. */
type SpanRedaction = Pick<Redactor, "redactAttributes" | "redactErrorObject">;

export interface StartSpanOptions {
  /** The span's first attributes; redacted before the tracer sees them, `undefined` values left out. */
  readonly attributes?: Attributes | undefined;
  /**
   * The span to nest under: one `startSpan` returned, such as the operation span the executor hands the pool
   * (`AcquireOptions.parentSpan`). The child is redacted with the parent's secrets too, and nests under the
   * parent when both come from the same tracer. A span the tracer returned directly is passed on as is.
   */
  readonly parent?: Span | undefined;
  /** Secrets of this span and its children, on top of every ancestor's (e.g. the operation's sudo password). */
  readonly redactor?: Redactor | undefined;
}

/** Recognised across installed copies of core, so a pool built with another copy still finds the tracer's span. */
const TRACED = Symbol.for("tunnel.span.traced");

interface TracedState {
  readonly tracer: Tracer;
  readonly span: Span;
  readonly redactors: readonly SpanRedaction[];
}

const noopSpan: Span = { setAttributes() {}, addEvent() {}, recordError() {}, end() {} };

function tracedState(span: Span | undefined): TracedState | undefined {
  if (typeof span !== "object" || span === null) return undefined;
  const state = (span as unknown as Record<symbol, unknown>)[TRACED] as Partial<TracedState> | undefined;
  if (typeof state !== "object" || state === null) return undefined;
  if (typeof state.span !== "object" || state.span === null || !Array.isArray(state.redactors)) return undefined;
  return state as TracedState;
}

function redactAttributes(redactors: readonly SpanRedaction[], attributes: Attributes | undefined): Record<string, AttributeValue> {
  let out: Record<string, AttributeValue> = {};
  for (const [key, value] of Object.entries(attributes ?? {})) if (value !== undefined) out[key] = value;
  for (const redactor of redactors) out = redactor.redactAttributes(out);
  return out;
}

/** A span that redacts before forwarding to the tracer's span, ends it once, and never lets a tracer failure escape. */
class TracedSpan implements Span {
  readonly [TRACED]: TracedState;
  #ended = false;

  constructor(state: TracedState) {
    this[TRACED] = state;
  }

  setAttributes(attributes: Attributes): void {
    const { span, redactors } = this[TRACED];
    try {
      span.setAttributes(redactAttributes(redactors, attributes));
    } catch {
      // A tracer failure never fails an operation.
    }
  }

  addEvent(name: string, attributes?: Attributes): void {
    const { span, redactors } = this[TRACED];
    try {
      span.addEvent(name, attributes === undefined ? undefined : redactAttributes(redactors, attributes));
    } catch {
      // A tracer failure never fails an operation.
    }
  }

  recordError(error: unknown): void {
    const { span, redactors } = this[TRACED];
    try {
      let redacted = error;
      for (const redactor of redactors) redacted = redactor.redactErrorObject(redacted);
      span.recordError(redacted);
    } catch {
      // A tracer failure never fails an operation.
    }
  }

  end(): void {
    // The contract promises a tracer one end() per span, whichever paths of the caller end it.
    if (this.#ended) return;
    this.#ended = true;
    try {
      this[TRACED].span.end();
    } catch {
      // A tracer failure never fails an operation.
    }
  }
}

/**
 * A span of the no-op tracer: records nothing, so it redacts nothing, but it hands its redactors on to its children
 * (a pool may trace where the executor does not).
 */
class QuietSpan implements Span {
  readonly [TRACED]: TracedState;

  constructor(state: TracedState) {
    this[TRACED] = state;
  }

  setAttributes(): void {}
  addEvent(): void {}
  recordError(): void {}
  end(): void {}
}

/**
 * Whether `tracer` records nothing at all (core's own no-op tracer, the default), so that a caller may skip building
 * attributes and events for it.
 */
export function tracesNothing(tracer: Tracer): boolean {
  return Object.getPrototypeOf(tracer) === NoopTracer.prototype;
}

/** Whether `span` records anything (false for a span of the no-op tracer). */
export function recording(span: Span): boolean {
  return !(span instanceof QuietSpan);
}

/**
 * Start a span on `tracer` the way tunnel's contracts require: attributes redacted with `options.redactor` and
 * every ancestor's redactor, and the tracer's own span of `options.parent` passed as parent (none when the
 * parent came from another tracer). Every later attribute, event and error on the returned span is redacted
 * the same way, and only its first `end()` reaches the tracer. Never throws, even when the tracer does.
 * @example const span = startSpan(tracer, "tunnel.pool.evict", { attributes: { "tunnel.connection.key": key } });
 */
export function startSpan(tracer: Tracer, name: string, options: StartSpanOptions = {}): Span {
  const parentState = tracedState(options.parent);
  const inherited = parentState?.redactors ?? [];
  const redactors = options.redactor === undefined ? inherited : [...inherited, options.redactor];
  // Core's own no-op tracer (the default) sees nothing: no attribute is copied or redacted for it.
  if (tracesNothing(tracer)) return new QuietSpan({ tracer, span: noopSpan, redactors });
  const parent = parentState === undefined ? options.parent : parentState.tracer === tracer ? parentState.span : undefined;
  let span: Span;
  try {
    const attributes = redactAttributes(redactors, options.attributes);
    span = tracer.startSpan(name, parent === undefined ? { attributes } : { attributes, parent });
  } catch {
    span = noopSpan;
  }
  return new TracedSpan({ tracer, span, redactors });
}
