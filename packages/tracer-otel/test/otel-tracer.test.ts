import { SpanKind, SpanStatusCode, context, trace } from "@opentelemetry/api";
import type { Tracer as OtelApiTracer } from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import { MeterProvider, MetricReader } from "@opentelemetry/sdk-metrics";
import type { DataPoint, Histogram, MetricData } from "@opentelemetry/sdk-metrics";
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base";
import type { ReadableSpan } from "@opentelemetry/sdk-trace-base";
import { AuthenticationError, ConnectError, REDACTED, Redactor, startSpan } from "@tunnel-sh/core";
import type { PoolStats } from "@tunnel-sh/core";
import { describe, expect, it } from "vitest";
import { OtelTracer } from "../src/index.js";
import type { OtelTracerOptions } from "../src/index.js";
import { traceScenarios } from "@tunnel-sh/testing";
import type { TraceScenario as Scenario } from "@tunnel-sh/testing";

const { KEY, command, failedCommand, nonZeroCommand, retriedCommand, script, transfer } = traceScenarios;

class TestReader extends MetricReader {
  protected override async onShutdown(): Promise<void> {}
  protected override async onForceFlush(): Promise<void> {}
}

function setup(options: Partial<OtelTracerOptions> = {}) {
  const exporter = new InMemorySpanExporter();
  const tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
  const reader = new TestReader();
  const meterProvider = new MeterProvider({ readers: [reader] });
  const tracer = new OtelTracer({ tracerProvider, meterProvider, ...options });
  const scenario: Scenario = { tracer, advance: () => {} };
  const spans = () => exporter.getFinishedSpans();
  const byName = (name: string) => spans().filter((span) => span.name === name);
  const single = (name: string): ReadableSpan => {
    const found = byName(name);
    expect(found).toHaveLength(1);
    return found[0]!;
  };
  const metric = async (name: string): Promise<MetricData | undefined> => {
    const { resourceMetrics } = await reader.collect();
    return resourceMetrics.scopeMetrics.flatMap((scope) => scope.metrics).find((item) => item.descriptor.name === name);
  };
  return { tracer, scenario, spans, byName, single, metric };
}

const parentOf = (span: ReadableSpan) => span.parentSpanContext?.spanId;
const idOf = (span: ReadableSpan) => span.spanContext().spanId;
const points = (data: MetricData | undefined) => (data?.dataPoints ?? []) as DataPoint<unknown>[];

describe("OtelTracer spans", () => {
  it("exports a command as a span tree: command → pool acquire → connect, one trace", () => {
    const { scenario, single, spans } = setup();
    command(scenario, { cmd: "systemctl status nginx" });
    const root = single("tunnel.command");
    const acquire = single("tunnel.pool.acquire");
    const connect = single("tunnel.connect");
    expect(parentOf(root)).toBeUndefined();
    expect(parentOf(acquire)).toBe(idOf(root));
    expect(parentOf(connect)).toBe(idOf(acquire));
    expect(new Set(spans().map((span) => span.spanContext().traceId)).size).toBe(1);
    expect([root.kind, acquire.kind, connect.kind]).toEqual([SpanKind.CLIENT, SpanKind.INTERNAL, SpanKind.CLIENT]);
    expect(root.instrumentationScope.name).toBe("@tunnel-sh/tracer-otel");
  });

  it("puts semantic-convention and tunnel attributes on the command span, and its events", () => {
    const { scenario, single } = setup();
    command(scenario, { cmd: "systemctl status nginx", sudoPassword: "correct horse" });
    const root = single("tunnel.command");
    expect(root.attributes).toMatchObject({
      "server.address": "web-1",
      "server.port": 22,
      "tunnel.user": "deploy",
      "tunnel.connection.key": KEY,
      "tunnel.command.sudo": true,
      "tunnel.command.timeout": 30,
      "tunnel.command.working_dir": "/srv/app",
      "tunnel.command.env_count": 1,
      "process.exit.code": 0,
      "tunnel.attempts": 1,
      "tunnel.output.truncated": false,
    });
    expect(Object.keys(root.attributes).filter((name) => name.endsWith("_ms") || name === "tunnel.success")).toEqual([]);
    expect(root.events.map((event) => event.name)).toEqual(["tunnel.sudo.prompt_answered", "tunnel.command.completed"]);
    expect(root.events[1]?.attributes).toEqual({ "process.exit.code": 0 });
    expect(root.status.code).toBe(SpanStatusCode.UNSET);
    expect(single("tunnel.pool.acquire").attributes).toEqual({
      "tunnel.connection.key": KEY,
      "tunnel.pool.queue_position": 0,
      "tunnel.transport": "ssh2",
      "tunnel.pool.wait_time": 0.005,
      "tunnel.pool.connected": true,
      "tunnel.pool.connection_id": 1,
    });
    expect(single("tunnel.connect").attributes).toMatchObject({ "server.address": "web-1", "tunnel.transport": "ssh2" });
  });

  it("drops the command text unless recordCommand is set", () => {
    const hidden = setup();
    command(hidden.scenario, { cmd: "cat /etc/motd" });
    expect(hidden.single("tunnel.command").attributes).not.toHaveProperty("tunnel.command.text");

    const shown = setup({ recordCommand: true });
    command(shown.scenario, { cmd: "cat /etc/motd" });
    expect(shown.single("tunnel.command").attributes["tunnel.command.text"]).toBe("cat /etc/motd");
  });

  it("exports a script with its interpreter, argument count and size", () => {
    const { scenario, single } = setup();
    script(scenario);
    const root = single("tunnel.script");
    expect(root.attributes).toMatchObject({
      "tunnel.script.interpreter": "/bin/bash",
      "tunnel.script.args_count": 2,
      "tunnel.script.size": 2048,
      "process.exit.code": 0,
    });
    expect(parentOf(single("tunnel.pool.acquire"))).toBe(idOf(root));
  });

  it("exports a transfer with direction, remote path, bytes, rate and verification; the local path only when asked", () => {
    const { scenario, single } = setup();
    transfer(scenario);
    expect(single("tunnel.transfer").attributes).not.toHaveProperty("tunnel.transfer.local_path");
    expect(single("tunnel.transfer").attributes).toMatchObject({
      "tunnel.transfer.remote_path": "/srv/app/app.tar.gz",
      "tunnel.transfer.direction": "upload",
      "tunnel.transfer.verify": "sha256",
      "tunnel.transfer.bytes": 3 * 1024 * 1024,
      "tunnel.transfer.files": 1,
      "tunnel.transfer.rate": 2 * 1024 * 1024,
      "tunnel.transfer.verified": true,
    });

    const local = setup({ recordLocalPaths: true });
    transfer(local.scenario);
    expect(local.single("tunnel.transfer").attributes["tunnel.transfer.local_path"]).toBe("./dist/app.tar.gz");
  });

  it("exports a failed-then-retried command: a failed attempt's spans, a retry event, a successful root", () => {
    const { scenario, single, byName } = setup();
    retriedCommand(scenario);
    const root = single("tunnel.command");
    const acquires = byName("tunnel.pool.acquire");
    const connects = byName("tunnel.connect");
    expect(acquires).toHaveLength(2);
    expect(connects).toHaveLength(2);
    expect(acquires.map(parentOf)).toEqual([idOf(root), idOf(root)]);
    expect(connects.map(parentOf)).toEqual(acquires.map(idOf));

    const [failed, succeeded] = acquires as [ReadableSpan, ReadableSpan];
    expect(failed.status).toEqual({ code: SpanStatusCode.ERROR, message: "connect ECONNREFUSED 10.0.0.5:22" });
    expect(failed.attributes).toMatchObject({ "error.type": "CONNECT", "tunnel.error.phase": "connect" });
    const exception = failed.events.find((event) => event.name === "exception");
    expect(exception?.attributes).toMatchObject({
      "exception.type": "ConnectError",
      "exception.message": "connect ECONNREFUSED 10.0.0.5:22",
    });
    expect(succeeded.status.code).toBe(SpanStatusCode.UNSET);

    expect(root.status.code).toBe(SpanStatusCode.UNSET);
    expect(root.attributes["tunnel.attempts"]).toBe(2);
    const retry = root.events.find((event) => event.name === "tunnel.retry");
    expect(retry?.attributes).toEqual({ "tunnel.attempt": 2, "tunnel.retry.delay": 0.2, "error.type": "CONNECT" });
  });

  it("marks a failed operation with status ERROR, error.type and the recorded exception", () => {
    const { scenario, single } = setup();
    failedCommand(scenario, new AuthenticationError("all configured authentication methods failed"), { openBreaker: true });
    const root = single("tunnel.command");
    expect(root.status).toEqual({ code: SpanStatusCode.ERROR, message: "all configured authentication methods failed" });
    expect(root.attributes).toMatchObject({ "error.type": "AUTHENTICATION", "tunnel.error.phase": "auth", "tunnel.attempts": 1 });
    expect(root.events.map((event) => event.name)).toEqual(["exception"]);
    // The class name, by the semantic conventions; the tunnel code is `error.type`.
    expect(root.events[0]?.attributes).toMatchObject({
      "exception.type": "AuthenticationError",
      "exception.message": "all configured authentication methods failed",
    });
    expect(root.events[0]?.attributes).not.toHaveProperty("exception.code");
    const breaker = single("tunnel.breaker");
    expect(breaker.events.map((event) => [event.name, event.attributes])).toEqual([
      [
        "tunnel.breaker.state",
        { "tunnel.breaker.state": "open", "tunnel.breaker.previous_state": "closed", "tunnel.breaker.failures": 1, "tunnel.connection.key": KEY },
      ],
    ]);
  });

  it("leaves a non-zero exit as data: status stays unset", () => {
    const { scenario, single } = setup();
    nonZeroCommand(scenario);
    const root = single("tunnel.command");
    expect(root.status.code).toBe(SpanStatusCode.UNSET);
    expect(root.attributes["process.exit.code"]).toBe(1);
  });

  it("nests a span without a parent under the caller's active span", () => {
    const manager = new AsyncLocalStorageContextManager().enable();
    context.setGlobalContextManager(manager);
    try {
      const { tracer, single } = setup();
      const request = new BasicTracerProvider().getTracer("app").startSpan("GET /deploy");
      context.with(trace.setSpan(context.active(), request), () => tracer.startSpan("tunnel.command").end());
      expect(parentOf(single("tunnel.command"))).toBe(request.spanContext().spanId);
    } finally {
      context.disable();
    }
  });

  it("registers no global tracer or meter provider", () => {
    const { scenario, spans } = setup();
    command(scenario, { cmd: "true" });
    expect(spans()).toHaveLength(3);
    expect(trace.getTracer("probe").startSpan("probe").isRecording()).toBe(false);
  });
});

describe("OtelTracer metrics", () => {
  it("records each operation's duration in seconds with its name and outcome", async () => {
    const { scenario, metric } = setup();
    command(scenario, { cmd: "true" });
    nonZeroCommand(scenario);
    transfer(scenario);
    const duration = await metric("tunnel.operation.duration");
    expect(duration?.descriptor.unit).toBe("s");
    const find = (attributes: Record<string, string>) =>
      points(duration).filter((point) => Object.entries(attributes).every(([key, value]) => point.attributes[key] === value));
    const success = find({ "tunnel.operation.name": "tunnel.command", "tunnel.outcome": "success" });
    expect(success).toHaveLength(1);
    expect((success[0]?.value as Histogram).count).toBe(1);
    expect((success[0]?.value as Histogram).sum).toBeGreaterThanOrEqual(0);
    expect(find({ "tunnel.operation.name": "tunnel.command", "tunnel.outcome": "failure" })).toHaveLength(1);
    expect(find({ "tunnel.operation.name": "tunnel.transfer", "tunnel.outcome": "success" })).toHaveLength(1);
    expect((find({ "tunnel.operation.name": "tunnel.pool.acquire" })[0]?.value as Histogram).count).toBe(3);
  });

  it("labels a failed operation's duration with outcome error and error.type", async () => {
    const { scenario, metric } = setup();
    failedCommand(scenario, new AuthenticationError("denied"));
    const duration = await metric("tunnel.operation.duration");
    const root = points(duration).find((point) => point.attributes["tunnel.operation.name"] === "tunnel.command");
    expect(root?.attributes).toEqual({ "tunnel.operation.name": "tunnel.command", "tunnel.outcome": "error", "error.type": "AUTHENTICATION" });
  });

  it("counts retries from tunnel.retry events", async () => {
    const { scenario, metric } = setup();
    retriedCommand(scenario);
    retriedCommand(scenario);
    command(scenario, { cmd: "true" });
    const retries = await metric("tunnel.retries");
    expect(points(retries).map((point) => [point.attributes, point.value])).toEqual([
      [{ "tunnel.operation.name": "tunnel.command", "error.type": "CONNECT" }, 2],
    ]);
  });

  function poolWith(keys: Record<string, { connections: number; idle: number; busy: number; waiting: number }>) {
    const entries = Object.entries(keys).map(
      ([key, counts]) =>
        [
          key,
          {
            connections: counts.connections,
            idleConnections: counts.idle,
            busyChannels: counts.busy,
            waiting: counts.waiting,
            created: counts.connections,
            evicted: {},
          },
        ] as const,
    );
    const sum = (pick: (value: (typeof entries)[number][1]) => number) => entries.reduce((total, [, value]) => total + pick(value), 0);
    const stats: PoolStats = {
      connections: sum((value) => value.connections),
      idleConnections: sum((value) => value.idleConnections),
      busyChannels: sum((value) => value.busyChannels),
      waiting: sum((value) => value.waiting),
      created: sum((value) => value.created),
      evicted: {},
      keys: Object.fromEntries(entries),
      acquireWaitMs: { count: 0, p50: 0, p95: 0, max: 0 },
    };
    return { stats: () => stats };
  }

  it("observes pool totals as gauges at each collection, until stopped", async () => {
    const { tracer, metric } = setup();
    const pool = poolWith({
      "deploy@web-1:22": { connections: 2, idle: 1, busy: 3, waiting: 0 },
      "deploy@web-2:22": { connections: 1, idle: 0, busy: 10, waiting: 4 },
    });
    let reads = 0;
    const stop = tracer.observePool({ stats: () => ((reads += 1), pool.stats()) }, { name: "deploy" });
    const connections = await metric("tunnel.pool.connection.count");
    expect(points(connections).map((point) => [point.attributes, point.value])).toEqual([
      [{ "tunnel.pool.name": "deploy", "tunnel.pool.connection.state": "idle" }, 1],
      [{ "tunnel.pool.name": "deploy", "tunnel.pool.connection.state": "used" }, 2],
    ]);
    expect(points(await metric("tunnel.pool.channel.busy")).map((point) => point.value)).toEqual([13]);
    expect(points(await metric("tunnel.pool.acquire.pending")).map((point) => point.value)).toEqual([4]);
    expect(reads).toBe(3);
    stop();
    await metric("tunnel.pool.channel.busy");
    expect(reads).toBe(3);
  });

  it("observes pools per connection key when asked", async () => {
    const { tracer, metric } = setup();
    tracer.observePool(
      poolWith({
        "deploy@web-1:22": { connections: 2, idle: 1, busy: 3, waiting: 0 },
        "deploy@web-2:22": { connections: 1, idle: 0, busy: 10, waiting: 4 },
      }),
      { byKey: true },
    );
    const busy = await metric("tunnel.pool.channel.busy");
    expect(points(busy).map((point) => [point.attributes["tunnel.connection.key"], point.value])).toEqual([
      ["deploy@web-1:22", 3],
      ["deploy@web-2:22", 10],
    ]);
  });
});

describe("OtelTracer secrets", () => {
  it("never exports a registered secret or a sudo password, even with recordCommand", async () => {
    const registered = "tok-9f8e7d6c5b";
    const sudoPassword = "sudo-pa55word";
    const redactor = new Redactor([registered]);
    const { scenario, spans, metric } = setup({ redactor, recordCommand: true });
    command(scenario, { cmd: `curl -H 'Authorization: ${registered}' https://deploy`, sudoPassword, redactor });
    failedCommand(scenario, new ConnectError(`proxy refused ${registered} and ${sudoPassword}`), { sudoPassword, redactor });
    const exported = JSON.stringify(spans().map((span) => ({ name: span.name, attributes: span.attributes, events: span.events, status: span.status })));
    expect(exported).toContain("[REDACTED]");
    expect(exported).not.toContain(registered);
    expect(exported).not.toContain(sudoPassword);
    const duration = await metric("tunnel.operation.duration");
    expect(JSON.stringify(points(duration))).not.toContain(registered);
  });
});

describe("OtelTracer robustness", () => {
  it("never throws when OpenTelemetry does", () => {
    const broken = {
      startSpan: () => {
        throw new Error("tracer broken");
      },
    } as unknown as OtelApiTracer;
    const tracer = new OtelTracer({ tracer: broken });
    expect(() => {
      const span = tracer.startSpan("tunnel.command", { attributes: { "server.address": "web-1" } });
      span.setAttributes({ "process.exit.code": 0 });
      span.recordError(new Error("boom"));
      span.end();
      tracer.observePool({
        stats: () => {
          throw new Error("pool broken");
        },
      })();
    }).not.toThrow();
  });

  it("ends a span once and ignores calls after the end", () => {
    const { tracer, single } = setup();
    const span = tracer.startSpan("tunnel.command");
    span.end();
    span.setAttributes({ "tunnel.late": true });
    span.end();
    expect(single("tunnel.command").attributes).not.toHaveProperty("tunnel.late");
  });

  it("nests under the spans core's startSpan opens, and ignores foreign parents", () => {
    const { tracer, single } = setup();
    const foreign = { setAttributes() {}, addEvent() {}, recordError() {}, end() {} };
    tracer.startSpan("tunnel.connect", { parent: foreign }).end();
    expect(parentOf(single("tunnel.connect"))).toBeUndefined();
    expect(tracer.otelSpan(foreign)).toBeUndefined();

    const root = tracer.startSpan("tunnel.command");
    expect(tracer.otelSpan(root)).toBeDefined();
    const operation = startSpan(tracer, "tunnel.script", { redactor: new Redactor(["hunter22"]) });
    startSpan(tracer, "tunnel.pool.acquire", { parent: operation, attributes: { "tunnel.note": "hunter22" } }).end();
    operation.end();
    root.end();
    expect(parentOf(single("tunnel.pool.acquire"))).toBe(idOf(single("tunnel.script")));
    expect(single("tunnel.pool.acquire").attributes["tunnel.note"]).toBe(REDACTED);
  });
});
