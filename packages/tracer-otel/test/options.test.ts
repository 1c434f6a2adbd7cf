import { trace } from "@opentelemetry/api";
import { MeterProvider } from "@opentelemetry/sdk-metrics";
import { BasicTracerProvider } from "@opentelemetry/sdk-trace-base";
import { Redactor } from "@tunnel-sh/core";
import { describe, expect, it } from "vitest";
import { OtelTracer } from "../src/index.js";

describe("OtelTracer options", () => {
  it("accepts every documented option", () => {
    const tracerProvider = new BasicTracerProvider();
    const meterProvider = new MeterProvider();
    expect(
      () =>
        new OtelTracer({
          tracerProvider,
          meterProvider,
          tracer: tracerProvider.getTracer("t"),
          meter: meterProvider.getMeter("m"),
          recordCommand: true,
          recordLocalPaths: true,
          redactor: new Redactor(),
          durationBoundaries: [0.1, 1],
        }),
    ).not.toThrow();
    expect(() => new OtelTracer()).not.toThrow();
  });

  it("refuses an unknown option by name, with the closest known name", () => {
    expect(() => new OtelTracer({ tracerprovider: trace } as never)).toThrow(
      expect.objectContaining({ code: "CONFIG", field: "tracerprovider", message: expect.stringContaining("(did you mean tracerProvider?)") }),
    );
    expect(() => new OtelTracer({ serviceName: "web" } as never)).toThrow(
      expect.objectContaining({ message: expect.stringContaining("is not an option of OtelTracer") }),
    );
  });

  it.each([
    ["tracer", { tracer: {} }],
    ["tracerProvider", { tracerProvider: "otel" }],
    ["meter", { meter: 1 }],
    ["meterProvider", { meterProvider: null }],
    ["redactor", { redactor: ["secret"] }],
    ["recordCommand", { recordCommand: "yes" }],
    ["recordLocalPaths", { recordLocalPaths: 1 }],
    ["durationBoundaries", { durationBoundaries: [1, "2"] }],
  ])("refuses a bad %s", (field, options) => {
    expect(() => new OtelTracer(options as never)).toThrow(expect.objectContaining({ code: "CONFIG", field }));
  });

  it("observePool refuses an unknown option or a bad value", () => {
    const tracer = new OtelTracer({ meterProvider: new MeterProvider() });
    const pool = { stats: () => ({ connections: 0, idleConnections: 0, busyChannels: 0, waiting: 0, keys: {} }) } as never;
    expect(() => tracer.observePool(pool, { bykey: true } as never)).toThrow(
      expect.objectContaining({ code: "CONFIG", field: "bykey", message: expect.stringContaining("(did you mean byKey?)") }),
    );
    expect(() => tracer.observePool(pool, { name: 7 } as never)).toThrow(expect.objectContaining({ code: "CONFIG", field: "name" }));
    expect(() => tracer.observePool(pool, { byKey: "yes" } as never)).toThrow(expect.objectContaining({ code: "CONFIG", field: "byKey" }));
    expect(() => tracer.observePool(pool, { name: "deploy", byKey: true })()).not.toThrow();
  });
});
