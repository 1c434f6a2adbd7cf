// Both tracers on real operations against a real sshd: the OpenTelemetry span tree, attributes and metrics for a
// command, a script, a transfer and a failed-then-retried command, and the console tracer's lines for the same
// runs in both formats — with the sudo password in neither.
import { randomBytes } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { SpanStatusCode } from "@opentelemetry/api";
import { MeterProvider, MetricReader } from "@opentelemetry/sdk-metrics";
import type { MetricData } from "@opentelemetry/sdk-metrics";
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base";
import type { ReadableSpan } from "@opentelemetry/sdk-trace-base";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Redactor } from "@tunnel-sh/core";
import { startSshd } from "@tunnel-sh/testing";
import type { Sshd } from "@tunnel-sh/testing";
import { ConsoleTracer } from "@tunnel-sh/tracer-console";
import { OtelTracer } from "@tunnel-sh/tracer-otel";
import { TeeTracer } from "./support/tee-tracer.js";
import { makeStack, testExecutorConfig, TRANSPORTS } from "./support/transports.js";

class TestReader extends MetricReader {
  protected override async onShutdown(): Promise<void> {}
  protected override async onForceFlush(): Promise<void> {}
}

function memoryStream(): { stream: Writable; text: () => string } {
  const chunks: string[] = [];
  return {
    stream: new Writable({
      write(chunk, _encoding, callback) {
        chunks.push(String(chunk));
        callback();
      },
    }),
    text: () => chunks.join(""),
  };
}

describe.each(TRANSPORTS)("tracers on real operations over %s", (transportName) => {
  let sshd: Sshd;
  let work: string;
  const exporter = new InMemorySpanExporter();
  const reader = new TestReader();
  const json = memoryStream();
  const pretty = memoryStream();

  beforeAll(async () => {
    sshd = await startSshd();
    work = await mkdtemp(join(tmpdir(), "tunnel-tracers-"));
    const redactor = new Redactor();
    const otel = new OtelTracer({
      tracerProvider: new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] }),
      meterProvider: new MeterProvider({ readers: [reader] }),
      recordCommand: true,
      redactor,
    });
    const tracer = new TeeTracer([
      otel,
      new ConsoleTracer({ stream: json.stream, format: "json", level: "debug", redactor }),
      new ConsoleTracer({ stream: pretty.stream, format: "pretty", colors: false, redactor }),
    ]);
    const stack = makeStack(transportName, sshd, { tracer, executorOptions: { redactor } });
    const sudo = { host: sshd.host, port: sshd.port, user: sshd.users.pwsudo.name };
    const plain = { host: sshd.host, port: sshd.port, user: sshd.users.plain.name };
    try {
      await stack.executor.runCommand({ ...sudo, cmd: "id -u", sudo: { password: sshd.users.pwsudo.password } });
      await stack.executor.runScript({ ...plain, content: "#!/bin/sh\necho script $1", args: ["one"] });
      await writeFile(join(work, "payload"), randomBytes(200_000));
      await stack.executor.transferFile({ ...plain, direction: "upload", source: join(work, "payload"), destination: `/tmp/tunnel-tracers-${transportName}` });
      // Failed, then retried: the server is down for the first attempt.
      await sshd.crash();
      setTimeout(() => void sshd.restart(), 100);
      const retried = makeStack(transportName, sshd, { tracer, executor: testExecutorConfig().with({ retryBackoff: 1_000, maxRetryDelay: 1_000 }) });
      try {
        await retried.executor.runCommand({ ...plain, cmd: "echo back" });
      } finally {
        await retried.close();
      }
    } finally {
      await stack.close();
    }
  }, 120_000);
  afterAll(async () => {
    await sshd?.stop();
    await rm(`/tmp/tunnel-tracers-${transportName}`, { force: true });
    if (work) await rm(work, { recursive: true, force: true });
  });

  const spans = () => exporter.getFinishedSpans();
  const named = (name: string) => spans().filter((span) => span.name === name);
  const parentOf = (span: ReadableSpan) => span.parentSpanContext?.spanId;
  const childrenOf = (span: ReadableSpan) => spans().filter((child) => parentOf(child) === span.spanContext().spanId);

  it("exports each operation as a tree: operation → pool acquire → connect", () => {
    const command = named("tunnel.command")[0]!;
    expect(command.attributes).toMatchObject({
      "server.address": sshd.host,
      "server.port": sshd.port,
      "tunnel.connection.key": `${sshd.users.pwsudo.name}@${sshd.host}:${sshd.port}`,
      "tunnel.command.sudo": true,
      "process.exit.code": 0,
      "tunnel.attempts": 1,
    });
    const acquire = childrenOf(command).find((span) => span.name === "tunnel.pool.acquire");
    expect(acquire).toBeDefined();
    expect(childrenOf(acquire!).map((span) => span.name)).toContain("tunnel.connect");
    expect(command.events.map((event) => event.name)).toContain("tunnel.sudo.prompt_answered");
    const script = named("tunnel.script")[0]!;
    expect(script.attributes).toMatchObject({ "tunnel.script.args_count": 1, "process.exit.code": 0 });
    const transfer = named("tunnel.transfer")[0]!;
    expect(transfer.attributes).toMatchObject({ "tunnel.transfer.direction": "upload", "tunnel.transfer.bytes": 200_000, "tunnel.transfer.files": 1 });
  });

  it("records the failed first attempt of the retried command as a retry event, and the operation as a success", () => {
    const retried = named("tunnel.command").find((span) => span.attributes["tunnel.attempts"] === 2);
    expect(retried).toBeDefined();
    expect(retried!.status.code).not.toBe(SpanStatusCode.ERROR);
    expect(retried!.events.find((event) => event.name === "tunnel.retry")?.attributes).toMatchObject({ "error.type": "CONNECT" });
    const failedConnect = spans().find((span) => span.name === "tunnel.connect" && span.status.code === SpanStatusCode.ERROR);
    expect(failedConnect).toBeDefined();
    // The semantic conventions: the exception's class name in exception.type, the tunnel code in error.type.
    expect(failedConnect!.attributes["error.type"]).toBe("CONNECT");
    expect(failedConnect!.events.find((event) => event.name === "exception")?.attributes?.["exception.type"]).toBe("ConnectError");
  });

  it("measures durations and retries as metrics", async () => {
    const { resourceMetrics } = await reader.collect();
    const metrics = resourceMetrics.scopeMetrics.flatMap((scope) => scope.metrics);
    const find = (name: string): MetricData | undefined => metrics.find((metric) => metric.descriptor.name === name);
    expect(find("tunnel.operation.duration")?.dataPoints.length).toBeGreaterThan(0);
    const retries = find("tunnel.retries")?.dataPoints.reduce((sum, point) => sum + Number(point.value), 0);
    expect(retries).toBe(1);
  });

  it("prints one JSON object per line and one readable line per operation", () => {
    const lines = json
      .text()
      .trim()
      .split("\n")
      .map((line) => JSON.parse(line) as { name: string });
    expect(lines.map((line) => line.name)).toEqual(expect.arrayContaining(["tunnel.command", "tunnel.script", "tunnel.transfer", "tunnel.connect"]));
    const readable = pretty.text();
    expect(readable).toMatch(/✓ .*command/);
    expect(readable).toMatch(/script/);
    expect(readable).toMatch(/transfer/);
  });

  it("never shows the sudo password", () => {
    const password = sshd.users.pwsudo.password;
    expect(JSON.stringify(spans().map((span) => [span.attributes, span.events]))).not.toContain(password);
    expect(json.text()).not.toContain(password);
    expect(pretty.text()).not.toContain(password);
  });
});
