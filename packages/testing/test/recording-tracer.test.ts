import { describe, expect, it } from "vitest";
import { NoopTracer, TimeoutError } from "@tunnel-sh/core";
import { RecordedSpan, RecordingTracer } from "@tunnel-sh/testing";

describe("RecordingTracer", () => {
  it("records spans in start order with merged attributes, events, errors and end state", () => {
    const tracer = new RecordingTracer();
    const span = tracer.startSpan("tunnel.command", { attributes: { "server.address": "web-1", attempt: 1, skipped: undefined } });
    span.setAttributes({ attempt: 2, "process.exit.code": 0 });
    span.addEvent("retry", { delay_ms: 200, reason: undefined });
    const error = new TimeoutError("too slow");
    span.recordError(error);
    const second = tracer.startSpan("tunnel.transfer");

    expect(tracer.spans).toEqual([span, second]);
    expect(span).toBeInstanceOf(RecordedSpan);
    expect(span.attributes).toEqual({ "server.address": "web-1", attempt: 2, "process.exit.code": 0 });
    expect(span.events).toEqual([{ name: "retry", attributes: { delay_ms: 200 } }]);
    expect(span.errors).toEqual([error]);
    expect(span.ended).toBe(false);
    expect(tracer.open()).toEqual([span, second]);

    span.end();
    span.end();
    expect(span.ended).toBe(true);
    expect(span.endCalls).toBe(2);
    expect(tracer.open()).toEqual([second]);
  });

  it("links a child to its parent span and finds spans by name", () => {
    const tracer = new RecordingTracer();
    const command = tracer.startSpan("tunnel.command");
    const acquire = tracer.startSpan("tunnel.pool.acquire", { parent: command });
    const connect = tracer.startSpan("tunnel.connect", { parent: acquire });
    const retry = tracer.startSpan("tunnel.connect", { parent: acquire });

    expect(acquire.parent).toBe(command);
    expect(connect.parent?.parent).toBe(command);
    expect(command.parent).toBeUndefined();
    expect(tracer.find("tunnel.connect")).toBe(connect);
    expect(tracer.named("tunnel.connect")).toEqual([connect, retry]);
    expect(tracer.childrenOf(acquire)).toEqual([connect, retry]);
    expect(tracer.find("tunnel.script")).toBeUndefined();
  });

  it("ignores a parent that is not one of its spans, and forgets everything on clear()", () => {
    const tracer = new RecordingTracer();
    const foreign = new NoopTracer().startSpan();
    expect(tracer.startSpan("tunnel.command", { parent: foreign }).parent).toBeUndefined();
    tracer.clear();
    expect(tracer.spans).toEqual([]);
  });
});
