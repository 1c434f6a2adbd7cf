import { SpanKind, SpanStatusCode, context, metrics, trace } from "@opentelemetry/api";
import type {
  Attributes as OtelAttributes,
  BatchObservableResult,
  Counter,
  Exception,
  Histogram,
  Meter,
  MeterProvider,
  ObservableGauge,
  Span as OtelSpan,
  Tracer as OtelApiTracer,
  TracerProvider,
} from "@opentelemetry/api";
import { ConfigError, Redactor, describeOptionValue, rejectUnknownOptions } from "@tunnel-sh/core";
import type { Attributes, PoolStats, Span, SpanOptions, Tracer } from "@tunnel-sh/core";

/** The instrumentation scope name of every span and instrument this package creates. */
export const INSTRUMENTATION_SCOPE = "@tunnel-sh/tracer-otel";

/**
 * Histogram bucket boundaries for `tunnel.operation.duration`, in seconds: from a fast pooled command
 * (a few milliseconds) to a long transfer (ten minutes).
 */
export const DEFAULT_DURATION_BOUNDARIES: readonly number[] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600];

export interface OtelTracerOptions {
  /** The OpenTelemetry tracer spans come from. Wins over `tracerProvider`. */
  readonly tracer?: OtelApiTracer;
  /**
   * Where to get a tracer (scope `@tunnel-sh/tracer-otel`) when `tracer` is not given. Without either, the
   * global provider is read (not registered): whatever the application registered, else a no-op.
   */
  readonly tracerProvider?: TracerProvider;
  /** The meter instruments come from. Wins over `meterProvider`. */
  readonly meter?: Meter;
  /** Where to get a meter when `meter` is not given. Without either, the global meter provider is read. */
  readonly meterProvider?: MeterProvider;
  /**
   * Keep `tunnel.command.text` on spans (redacted). Default `false`: command lines may hold data that is
   * private without being a registered secret, and traces usually leave the machine.
   */
  readonly recordCommand?: boolean;
  /**
   * Keep `tunnel.transfer.local_path` (the local file of a transfer) on spans (redacted). Default `false`: no local
   * file path reaches OpenTelemetry unless asked; the remote path is always kept.
   */
  readonly recordLocalPaths?: boolean;
  /**
   * Removes secrets from every string attribute, event attribute and exception message before it reaches
   * OpenTelemetry. Share it with the executor so secrets registered there are removed here too.
   */
  readonly redactor?: Redactor;
  /** Bucket boundaries (seconds) advised for `tunnel.operation.duration`. Default `DEFAULT_DURATION_BOUNDARIES`. */
  readonly durationBoundaries?: readonly number[];
}

/** Every option name; `satisfies` makes the compiler refuse a list that misses one. */
const OPTIONS = Object.keys({
  tracer: true,
  tracerProvider: true,
  meter: true,
  meterProvider: true,
  recordCommand: true,
  recordLocalPaths: true,
  redactor: true,
  durationBoundaries: true,
} satisfies Record<keyof OtelTracerOptions, true>);

const OBSERVE_POOL_OPTIONS = Object.keys({ name: true, byKey: true } satisfies Record<keyof ObservePoolOptions, true>);

function validateOptions(options: OtelTracerOptions): void {
  rejectUnknownOptions(options, OPTIONS, "OtelTracer");
  const values = options as Record<string, unknown>;
  const methods: ReadonlyArray<readonly [keyof OtelTracerOptions, string]> = [
    ["tracer", "startSpan"],
    ["tracerProvider", "getTracer"],
    ["meter", "createHistogram"],
    ["meterProvider", "getMeter"],
    ["redactor", "redact"],
  ];
  for (const [field, method] of methods) {
    const value = values[field];
    if (value !== undefined && typeof (value as Record<string, unknown> | null)?.[method] !== "function") {
      throw new ConfigError(field, `must have a ${method}() method, got ${describeOptionValue(value)}`);
    }
  }
  for (const field of ["recordCommand", "recordLocalPaths"] as const) {
    if (options[field] !== undefined && typeof options[field] !== "boolean") {
      throw new ConfigError(field, `must be true or false, got ${describeOptionValue(values[field])}`);
    }
  }
  const boundaries: unknown = options.durationBoundaries;
  if (boundaries !== undefined && (!Array.isArray(boundaries) || boundaries.some((value) => typeof value !== "number" || !Number.isFinite(value)))) {
    throw new ConfigError("durationBoundaries", "must be a list of finite numbers (seconds)");
  }
}

/** Something with pool counters, e.g. `@tunnel-sh/pool`'s `ConnectionPool`. */
export interface ObservablePool {
  stats(): PoolStats;
}

export interface ObservePoolOptions {
  /** Added as `tunnel.pool.name` to every observation, to tell several pools apart. */
  readonly name?: string;
  /**
   * Report one observation per connection key (attribute `tunnel.connection.key`) instead of pool totals.
   * Default `false`: totals only, so the number of series does not grow with the number of hosts.
   */
  readonly byKey?: boolean;
}

const OPERATIONS = new Set(["tunnel.command", "tunnel.script", "tunnel.transfer"]);

/**
 * A `Tracer` (from `@tunnel-sh/core`) over the OpenTelemetry API. tunnel's spans become OpenTelemetry spans,
 * nested by the `parent` tunnel passes (under the caller's active span when there is none), with semantic
 * convention attributes where they exist (`server.address`, `server.port`, `process.exit.code`, `error.type`,
 * `exception.*`) and `tunnel.*` otherwise; durations in seconds. Failures set status ERROR, `error.type` (the
 * tunnel error code) and an exception event (`exception.type` is the error's class name). Metrics:
 * `tunnel.operation.duration`, `tunnel.retries` and, through `observePool`, pool gauges.
 *
 * Registers nothing globally. Every method is safe to call at any time and never throws.
 *
 * @example
 * const provider = new NodeTracerProvider({ spanProcessors: [new BatchSpanProcessor(new OTLPTraceExporter())] });
 * const tracer = new OtelTracer({ tracerProvider: provider, meterProvider, redactor });
 * const pool = new ConnectionPool(transport, DefaultPoolConfig(), tracer);
 * tracer.observePool(pool);
 */
export class OtelTracer implements Tracer {
  readonly #tracer: OtelApiTracer;
  readonly #meter: Meter;
  readonly #redactor: Redactor;
  readonly #recordCommand: boolean;
  readonly #recordLocalPaths: boolean;
  readonly #spans = new WeakMap<Span, TunnelOtelSpan>();
  readonly #duration: Histogram;
  readonly #retries: Counter;
  #gauges: { readonly connections: ObservableGauge; readonly busy: ObservableGauge; readonly waiting: ObservableGauge } | undefined;

  /** Throws `ConfigError` for an unknown option or a value of the wrong kind: the one time this class throws. */
  constructor(options: OtelTracerOptions = {}) {
    validateOptions(options);
    this.#tracer = options.tracer ?? (options.tracerProvider ?? trace).getTracer(INSTRUMENTATION_SCOPE);
    this.#meter = options.meter ?? (options.meterProvider ?? metrics).getMeter(INSTRUMENTATION_SCOPE);
    this.#redactor = options.redactor ?? new Redactor();
    this.#recordCommand = options.recordCommand ?? false;
    this.#recordLocalPaths = options.recordLocalPaths ?? false;
    this.#duration = this.#meter.createHistogram("tunnel.operation.duration", {
      description: "Duration of tunnel operations (command, script, transfer) and of their pool acquire and connect steps.",
      unit: "s",
      advice: { explicitBucketBoundaries: [...(options.durationBoundaries ?? DEFAULT_DURATION_BOUNDARIES)] },
    });
    this.#retries = this.#meter.createCounter("tunnel.retries", {
      description: "Retries tunnel's executor started after a retryable failure.",
      unit: "{retry}",
    });
  }

  startSpan(name: string, options?: SpanOptions): Span {
    try {
      const attributes = options?.attributes;
      const parent = options?.parent;
      const parentSpan = parent === undefined ? undefined : this.#spans.get(parent);
      const redactor = this.#redactor;
      const parentContext = parentSpan ? trace.setSpan(context.active(), parentSpan.otelSpan) : context.active();
      const otelSpan = this.#tracer.startSpan(name, { kind: kindOf(name), attributes: this.clean(redactor, attributes) }, parentContext);
      const span = new TunnelOtelSpan(this, name, otelSpan, redactor, attributes);
      this.#spans.set(span, span);
      return span;
    } catch {
      return NOOP_SPAN;
    }
  }

  /**
   * The OpenTelemetry span behind a span this tracer started, e.g. to add links or read its `spanContext()`.
   * `undefined` for spans from elsewhere.
   */
  otelSpan(span: Span): OtelSpan | undefined {
    return this.#spans.get(span)?.otelSpan;
  }

  /**
   * Report a pool's counters as observable gauges, read at each metric collection:
   * `tunnel.pool.connection.count` (`tunnel.pool.connection.state` = `idle` | `used`),
   * `tunnel.pool.channel.busy` and `tunnel.pool.acquire.pending`. Returns a function that stops observing.
   * An unknown option (a misspelt `byKey` would silently report totals) is a `ConfigError`; this is called while
   * setting up, not on the traced path.
   * @example const stop = tracer.observePool(pool, { name: "deploy" }); ... stop();
   */
  observePool(pool: ObservablePool, options: ObservePoolOptions = {}): () => void {
    rejectUnknownOptions(options, OBSERVE_POOL_OPTIONS, "OtelTracer.observePool");
    if (options.name !== undefined && typeof options.name !== "string") {
      throw new ConfigError("name", `must be a string, got ${describeOptionValue(options.name)}`);
    }
    if (options.byKey !== undefined && typeof options.byKey !== "boolean") {
      throw new ConfigError("byKey", `must be true or false, got ${describeOptionValue(options.byKey)}`);
    }
    try {
      this.#gauges ??= {
        connections: this.#meter.createObservableGauge("tunnel.pool.connection.count", {
          description: "Connections held by the pool, by state (idle: no channel in use; used: at least one).",
          unit: "{connection}",
        }),
        busy: this.#meter.createObservableGauge("tunnel.pool.channel.busy", {
          description: "Channels leased out by the pool.",
          unit: "{channel}",
        }),
        waiting: this.#meter.createObservableGauge("tunnel.pool.acquire.pending", {
          description: "Acquire requests waiting for a channel.",
          unit: "{request}",
        }),
      };
      const gauges = this.#gauges;
      const base: OtelAttributes = options.name === undefined ? {} : { "tunnel.pool.name": options.name };
      const callback = (observer: BatchObservableResult): void => {
        let stats: PoolStats;
        try {
          stats = pool.stats();
        } catch {
          return;
        }
        const entries: [OtelAttributes, PoolStats | PoolStats["keys"][string]][] = options.byKey
          ? Object.entries(stats.keys).map(([key, keyStats]) => [{ ...base, "tunnel.connection.key": key }, keyStats])
          : [[base, stats]];
        for (const [attributes, counters] of entries) {
          observer.observe(gauges.connections, counters.idleConnections, { ...attributes, "tunnel.pool.connection.state": "idle" });
          observer.observe(gauges.connections, counters.connections - counters.idleConnections, {
            ...attributes,
            "tunnel.pool.connection.state": "used",
          });
          observer.observe(gauges.busy, counters.busyChannels, attributes);
          observer.observe(gauges.waiting, counters.waiting, attributes);
        }
      };
      const observables = [gauges.connections, gauges.busy, gauges.waiting];
      this.#meter.addBatchObservableCallback(callback, observables);
      return () => {
        try {
          this.#meter.removeBatchObservableCallback(callback, observables);
        } catch {
          // never throw from a tracer
        }
      };
    } catch {
      return () => {};
    }
  }

  /** @internal tunnel attributes as OpenTelemetry attributes: redacted, command text and local paths kept only when asked. */
  clean(redactor: Redactor, attributes: Attributes | undefined): OtelAttributes {
    const out: OtelAttributes = {};
    for (const [key, value] of Object.entries(redactor.redactAttributes(attributes))) {
      if (key === "tunnel.command.text" && !this.#recordCommand) continue;
      if (key === "tunnel.transfer.local_path" && !this.#recordLocalPaths) continue;
      out[key] = Array.isArray(value) ? ([...(value as readonly (string | number)[])] as string[] | number[]) : (value as string | number | boolean);
    }
    return out;
  }

  /** @internal */
  recordDuration(seconds: number, attributes: OtelAttributes): void {
    this.#duration.record(seconds, attributes);
  }

  /** @internal */
  countRetry(attributes: OtelAttributes): void {
    this.#retries.add(1, attributes);
  }
}

function kindOf(name: string): SpanKind {
  return OPERATIONS.has(name) || name === "tunnel.connect" ? SpanKind.CLIENT : SpanKind.INTERNAL;
}

class TunnelOtelSpan implements Span {
  readonly otelSpan: OtelSpan;
  readonly redactor: Redactor;
  readonly #tracer: OtelTracer;
  readonly #name: string;
  readonly #started = performance.now();
  #ended = false;
  #errorType: string | undefined;
  #failed = false;

  constructor(tracer: OtelTracer, name: string, otelSpan: OtelSpan, redactor: Redactor, attributes: Attributes | undefined) {
    this.#tracer = tracer;
    this.#name = name;
    this.otelSpan = otelSpan;
    this.redactor = redactor;
    this.#note(attributes);
  }

  setAttributes(attributes: Attributes): void {
    if (this.#ended) return;
    try {
      this.#note(attributes);
      this.otelSpan.setAttributes(this.#tracer.clean(this.redactor, attributes));
    } catch {
      // never throw from a tracer
    }
  }

  addEvent(name: string, attributes?: Attributes): void {
    if (this.#ended) return;
    try {
      this.otelSpan.addEvent(name, this.#tracer.clean(this.redactor, attributes));
      if (name === "tunnel.retry") {
        const type = attributes?.["error.type"];
        this.#tracer.countRetry({
          "tunnel.operation.name": this.#name,
          ...(typeof type === "string" ? { "error.type": type } : {}),
        });
      }
    } catch {
      // never throw from a tracer
    }
  }

  recordError(error: unknown): void {
    if (this.#ended) return;
    try {
      const summary = this.redactor.redactError(error);
      // No `code`: the SDK would put it in `exception.type`, which holds the class name; the code is `error.type`.
      const exception: Exception = {
        name: summary.name,
        message: summary.message,
        ...(summary.stack !== undefined ? { stack: summary.stack } : {}),
      };
      this.otelSpan.recordException(exception);
      this.otelSpan.setStatus({ code: SpanStatusCode.ERROR, message: summary.message });
      this.otelSpan.setAttribute("error.type", summary.type);
      if (summary.phase !== undefined) this.otelSpan.setAttribute("tunnel.error.phase", summary.phase);
      this.#errorType = summary.type;
    } catch {
      // never throw from a tracer
    }
  }

  end(): void {
    if (this.#ended) return;
    this.#ended = true;
    try {
      this.otelSpan.end();
      const outcome = this.#errorType !== undefined ? "error" : this.#failed ? "failure" : "success";
      this.#tracer.recordDuration((performance.now() - this.#started) / 1000, {
        "tunnel.operation.name": this.#name,
        "tunnel.outcome": outcome,
        ...(this.#errorType !== undefined ? { "error.type": this.#errorType } : {}),
      });
    } catch {
      // never throw from a tracer
    }
  }

  /** Remembers what decides the metric outcome: a command that ran and exited non-zero is a failure, not an error. */
  #note(attributes: Attributes | undefined): void {
    if (!attributes) return;
    const code = attributes["process.exit.code"];
    const signal = attributes["tunnel.exit.signal"];
    if (typeof code === "number" && code !== 0) this.#failed = true;
    if (typeof signal === "string" && signal !== "") this.#failed = true;
  }
}

const NOOP_SPAN: Span = { setAttributes() {}, addEvent() {}, recordError() {}, end() {} };
