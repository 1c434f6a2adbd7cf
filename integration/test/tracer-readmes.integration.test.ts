// The tracer READMEs list exactly what is emitted: their span, event and metric tables are compared, in both
// directions, with what both tracers emit for real operations against a real sshd over both transports —
// commands (sudo, non-zero exit, killed by a signal, check), a script, transfers (upload, download, a failed one),
// a retry after a lost server, a refused channel, an open circuit breaker, the pool's acquire failures and
// evictions, pool gauges.
// Also: no local file path in any span, event or metric attribute by default.
import { randomBytes } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { SpanKind, SpanStatusCode } from "@opentelemetry/api";
import { DataPointType, MeterProvider, MetricReader } from "@opentelemetry/sdk-metrics";
import type { MetricData } from "@opentelemetry/sdk-metrics";
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Redactor } from "@tunnel-sh/core";
import type { Target } from "@tunnel-sh/core";
import { ConnectionPool, DefaultPoolConfig } from "@tunnel-sh/pool";
import { startSshd } from "@tunnel-sh/testing";
import type { Sshd } from "@tunnel-sh/testing";
import { ConsoleTracer } from "@tunnel-sh/tracer-console";
import { OtelTracer } from "@tunnel-sh/tracer-otel";
import { neverEmitted, undocumented } from "./support/emitted-telemetry.js";
import type { Emitted, EmittedMetric, EmittedSpan, Exemptions } from "./support/emitted-telemetry.js";
import { TeeTracer } from "./support/tee-tracer.js";
import { readTracerReadme } from "./support/tracer-readme.js";
import { makeStack, makeTransport, testExecutorConfig, TRANSPORTS } from "./support/transports.js";
import type { TransportName } from "./support/transports.js";

const packages = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "packages");
const otelReadme = readTracerReadme(join(packages, "tracer-otel", "README.md"));
const consoleReadme = readTracerReadme(join(packages, "tracer-console", "README.md"));

/** Rows no run here produces, and why. Everything else in the READMEs must show up. */
const EXEMPT: Exemptions = {
  events: {
    "tunnel.cancel.kill_failed": "needs the remote kill itself to fail",
    "tunnel.script.cleanup_failed": "needs every connection to the host to fail while the script folder is removed",
    "tunnel.transfer.verify_mismatch": "needs the remote file to change between the copy and its checksum",
  },
};
/** Only the ssh2 transport reports hops; the openssh transport leaves them to the ssh binary. */
const SSH2_ONLY_EVENTS = new Set(["tunnel.hop.ready"]);

class TestReader extends MetricReader {
  protected override async onShutdown(): Promise<void> {}
  protected override async onForceFlush(): Promise<void> {}
}

function lineStream(): { stream: { write(chunk: string): void }; lines: () => Record<string, any>[] } {
  const chunks: string[] = [];
  return {
    stream: { write: (chunk: string) => void chunks.push(chunk) },
    lines: () =>
      chunks
        .join("")
        .split("\n")
        .filter((line) => line !== "")
        .map((line) => JSON.parse(line) as Record<string, any>),
  };
}

/** An OpenTelemetry tracer with its own exporter and metric reader. */
function otelSink(options: { recordCommand: boolean; recordLocalPaths: boolean; redactor: Redactor }) {
  const exporter = new InMemorySpanExporter();
  const reader = new TestReader();
  const tracer = new OtelTracer({
    tracerProvider: new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] }),
    meterProvider: new MeterProvider({ readers: [reader] }),
    ...options,
  });
  return { tracer, exporter, reader };
}

const METRIC_TYPES: Record<number, string> = {
  [DataPointType.HISTOGRAM]: "histogram",
  [DataPointType.SUM]: "counter",
  [DataPointType.GAUGE]: "observable gauge",
};

function metricsOf(collections: readonly MetricData[][]): EmittedMetric[] {
  return collections.flat().map((metric) => ({
    name: metric.descriptor.name,
    unit: metric.descriptor.unit,
    type: METRIC_TYPES[metric.dataPointType] ?? `data point type ${metric.dataPointType}`,
    points: metric.dataPoints.map((point) => point.attributes),
  }));
}

async function collect(reader: MetricReader): Promise<MetricData[]> {
  const { resourceMetrics } = await reader.collect();
  return resourceMetrics.scopeMetrics.flatMap((scope) => scope.metrics);
}

async function deadPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (typeof address !== "object" || address === null) throw new Error("no port");
  return address.port;
}

interface Run {
  readonly otel: Emitted;
  readonly console: Emitted;
  /** What the tracers with default options emitted, for the local-path check. */
  readonly defaults: { readonly otel: Emitted; readonly consoleText: string };
  readonly localPaths: readonly string[];
}

const runs = new Map<TransportName, Run>();
const cleanups: (() => Promise<void>)[] = [];

/** Every scenario once over `transportName`, watched by four tracers: each kind with all options on, and with defaults. */
async function runScenarios(transportName: TransportName, sshd: Sshd, limited: Sshd): Promise<Run> {
  const work = await mkdtemp(join(tmpdir(), "tunnel-tracer-readmes-"));
  const remote = `/tmp/tunnel-tracer-readmes-${transportName}-${randomBytes(4).toString("hex")}`;
  cleanups.push(async () => {
    await rm(work, { recursive: true, force: true });
    await rm(remote, { force: true });
  });
  const redactor = new Redactor();
  const full = otelSink({ recordCommand: true, recordLocalPaths: true, redactor });
  const plain = otelSink({ recordCommand: false, recordLocalPaths: false, redactor });
  const fullConsole = lineStream();
  const plainConsole = lineStream();
  const tracer = new TeeTracer([
    full.tracer,
    plain.tracer,
    new ConsoleTracer({ stream: fullConsole.stream, format: "json", level: "debug", recordLocalPaths: true, redactor }),
    new ConsoleTracer({ stream: plainConsole.stream, format: "json", level: "debug", redactor }),
  ]);
  const otelTracers = [full.tracer, plain.tracer];
  const gauges: MetricData[][][] = [[], []];
  const sudoUser = { host: sshd.host, port: sshd.port, user: sshd.users.pwsudo.name };
  const user = { host: sshd.host, port: sshd.port, user: sshd.users.plain.name };

  const stack = makeStack(transportName, sshd, { tracer, executorOptions: { redactor } });
  const stops = otelTracers.map((otel) => otel.observePool(stack.pool, { name: "main", byKey: true }));
  try {
    await stack.executor.runCommand({ ...sudoUser, cmd: "id -u", sudo: { password: sshd.users.pwsudo.password }, env: { LC_ALL: "C" }, workingDir: "/tmp" });
    await stack.executor.runCommand({ ...user, cmd: "exit 3" });
    await stack.executor.runCommand({ ...user, cmd: "kill -KILL $$" });
    await expect(stack.executor.runCommand({ ...user, cmd: "exit 4", check: true })).rejects.toMatchObject({ code: "COMMAND_FAILED" });
    await stack.executor.runScript({ ...user, content: "#!/bin/sh\necho script $1", interpreter: "/bin/sh", args: ["one"], workingDir: "/tmp" });
    await stack.executor.runScript({ ...user, content: "#!/bin/sh\nkill -KILL $$" });
    const local = join(work, "payload");
    await writeFile(local, randomBytes(100_000));
    await stack.executor.transferFile({ ...user, direction: "upload", source: local, destination: remote, verify: "sha256" });
    await stack.executor.transferFile({ ...user, direction: "download", source: remote, destination: join(work, "back") });
    await expect(
      stack.executor.transferFile({ ...user, direction: "download", source: `${remote}-missing`, destination: join(work, "missing") }),
    ).rejects.toMatchObject({ code: "TRANSFER" });
    for (const [index, otel] of otelTracers.entries()) gauges[index]!.push(await collect(otel === full.tracer ? full.reader : plain.reader));
  } finally {
    for (const stop of stops) stop();
    await stack.close();
  }

  // The pool's own failures, on a pool with room for one channel: a timeout, an abort, a full queue, a close.
  const tight = new ConnectionPool(
    makeTransport(transportName, sshd),
    { ...DefaultPoolConfig(), maxConnections: 1, maxConnectionsPerKey: 1, maxChannelsPerConnection: 1, acquireTimeoutMs: 300, maxWaiting: 1 },
    tracer,
  );
  const totals = otelTracers.map((otel) => otel.observePool(tight));
  const target: Target = user;
  // Connected beforehand (a warm-up connect, without a parent), so only the waits below meet the acquire timeout.
  await tight.warm(target);
  const held = await tight.acquire(target);
  for (const [index, otel] of otelTracers.entries()) gauges[index]!.push(await collect(otel === full.tracer ? full.reader : plain.reader));
  await expect(tight.acquire(target)).rejects.toMatchObject({ code: "POOL_TIMEOUT" });
  const abort = new AbortController();
  const aborted = tight.acquire(target, { signal: abort.signal });
  abort.abort();
  await expect(aborted).rejects.toMatchObject({ code: "ABORTED" });
  const waiting = tight.acquire(target);
  await expect(tight.acquire(target)).rejects.toMatchObject({ code: "POOL_TIMEOUT" });
  const closing = tight.close();
  await expect(waiting).rejects.toMatchObject({ code: "POOL_CLOSED" });
  held.release();
  await closing;
  for (const stop of totals) stop();

  // A server with MaxSessions 1 refuses the second of two overlapping commands on one connection; the pool
  // learns the budget and the command runs when the first one's channel closes.
  const crowded = makeStack(transportName, limited, { tracer, pool: { maxConnectionsPerKey: 1, maxChannelsPerConnection: 2 }, transport: { maxChannels: 2 } });
  try {
    const crowd = { host: limited.host, port: limited.port, user: limited.users.plain.name };
    const results = await Promise.all([1, 2].map((index) => crowded.executor.runCommand({ ...crowd, cmd: `sleep 1; echo ${index}` })));
    expect(results.map((result) => result.stdout)).toEqual(["1\n", "2\n"]);
  } finally {
    await crowded.close();
  }

  // A host that refuses connections opens its breaker at the first failure.
  const refusing = makeStack(transportName, sshd, { tracer, executor: testExecutorConfig().with({ maxRetries: 0, breaker: { failureThreshold: 1 } }) });
  try {
    await expect(refusing.executor.runCommand({ host: "127.0.0.1", port: await deadPort(), user: sshd.users.plain.name, cmd: "true" })).rejects.toMatchObject({
      code: "CONNECT",
    });
  } finally {
    await refusing.close();
  }

  // Failed, then retried: the server is down for the first attempt.
  await sshd.crash();
  const restart = new Promise<void>((resolve, reject) => setTimeout(() => void sshd.restart().then(resolve, reject), 100));
  const retried = makeStack(transportName, sshd, { tracer, executor: testExecutorConfig().with({ retryBackoff: 1_000, maxRetryDelay: 1_000 }) });
  try {
    const result = await retried.executor.runCommand({ ...user, cmd: "echo back" });
    expect(result.attempts).toBeGreaterThan(1);
  } finally {
    await retried.close();
    await restart;
  }

  const fullMetrics = [...(gauges[0] ?? []), await collect(full.reader)];
  const plainMetrics = [...(gauges[1] ?? []), await collect(plain.reader)];
  return {
    otel: { spans: full.exporter.getFinishedSpans().map(otelSpan), metrics: metricsOf(fullMetrics) },
    console: { spans: fullConsole.lines().map(consoleSpan), metrics: [] },
    defaults: {
      otel: { spans: plain.exporter.getFinishedSpans().map(otelSpan), metrics: metricsOf(plainMetrics) },
      consoleText: plainConsole
        .lines()
        .map((line) => JSON.stringify([line["attributes"], line["events"]]))
        .join("\n"),
    },
    localPaths: [work, sshd.dir, sshd.clientKeyPath, sshd.knownHostsPath],
  };
}

function otelSpan(span: ReturnType<InMemorySpanExporter["getFinishedSpans"]>[number]): EmittedSpan {
  return {
    name: span.name,
    kind: SpanKind[span.kind],
    attributes: span.attributes,
    events: span.events.map((event) => ({ name: event.name, attributes: event.attributes ?? {} })),
    failed: span.status.code === SpanStatusCode.ERROR,
  };
}

function consoleSpan(line: Record<string, any>): EmittedSpan {
  return {
    name: line["name"] as string,
    attributes: line["attributes"] as Record<string, unknown>,
    events: (line["events"] as { name: string; attributes: Record<string, unknown> }[]).map((event) => ({ name: event.name, attributes: event.attributes })),
    failed: line["status"] === "error",
  };
}

function merged(all: readonly Emitted[]): Emitted {
  return { spans: all.flatMap((emitted) => emitted.spans), metrics: all.flatMap((emitted) => emitted.metrics) };
}

describe("tracer READMEs against what real operations emit", () => {
  const servers: Sshd[] = [];

  beforeAll(async () => {
    const limited = await startSshd({ usePam: false, maxSessions: 1 });
    servers.push(limited);
    for (const transportName of TRANSPORTS) {
      const sshd = await startSshd();
      servers.push(sshd);
      runs.set(transportName, await runScenarios(transportName, sshd, limited));
    }
  }, 300_000);
  afterAll(async () => {
    for (const sshd of servers) await sshd.stop();
    for (const cleanup of cleanups) await cleanup();
  });

  const run = (transportName: TransportName): Run => {
    const found = runs.get(transportName);
    if (!found) throw new Error(`no run over ${transportName}`);
    return found;
  };

  it("parses every table of both READMEs", () => {
    expect(otelReadme.spans.length).toBeGreaterThanOrEqual(7);
    expect(otelReadme.events.map((event) => event.name)).toContain("exception");
    expect(otelReadme.metrics.map((metric) => metric.name)).toContain("tunnel.operation.duration");
    expect(consoleReadme.spans.map((span) => span.name)).toEqual(otelReadme.spans.flatMap((span) => (span.name === undefined ? [] : [span.name])));
    expect(consoleReadme.metrics).toEqual([]);
  });

  describe.each(TRANSPORTS)("over %s", (transportName) => {
    const exemptions: Exemptions = {
      ...EXEMPT,
      events: {
        ...EXEMPT.events,
        ...(transportName === "ssh2" ? {} : Object.fromEntries([...SSH2_ONLY_EVENTS].map((name) => [name, "the ssh2 transport only"]))),
      },
    };

    it("tracer-otel emits nothing its README does not list", () => {
      expect(undocumented(otelReadme, run(transportName).otel)).toEqual([]);
      expect(undocumented(otelReadme, run(transportName).defaults.otel)).toEqual([]);
    });

    it("tracer-otel emits everything its README lists", () => {
      expect(neverEmitted(otelReadme, run(transportName).otel, exemptions)).toEqual([]);
    });

    it("tracer-console emits nothing its README does not list", () => {
      expect(undocumented(consoleReadme, run(transportName).console)).toEqual([]);
    });

    it("tracer-console emits everything its README lists", () => {
      expect(neverEmitted(consoleReadme, run(transportName).console, exemptions)).toEqual([]);
    });

    it("puts no local file path in any span, event or metric attribute with default options", () => {
      const { defaults, localPaths } = run(transportName);
      const otelText = JSON.stringify([
        defaults.otel.spans.map((span) => [span.attributes, span.events.filter((event) => event.name !== "exception")]),
        defaults.otel.metrics.map((metric) => metric.points),
      ]);
      for (const path of localPaths) {
        expect(otelText).not.toContain(path);
        expect(defaults.consoleText).not.toContain(path);
      }
      // The check can fail: the tracers with local paths switched on do show the transfer's local file.
      expect(JSON.stringify(run(transportName).otel.spans.map((span) => span.attributes))).toContain(localPaths[0]);
    });
  });

  it("every documented row shows up over at least one transport", () => {
    const all = [...runs.values()];
    expect(neverEmitted(otelReadme, merged(all.map((item) => item.otel)), EXEMPT)).toEqual([]);
    expect(neverEmitted(consoleReadme, merged(all.map((item) => item.console)), EXEMPT)).toEqual([]);
  });
});
