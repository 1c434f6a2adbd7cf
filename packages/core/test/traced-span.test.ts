import { describe, expect, it } from "vitest";
import { ConnectError } from "../src/errors.js";
import { REDACTED, Redactor } from "../src/redact.js";
import { startSpan } from "../src/traced-span.js";
import type { Span, SpanOptions, Tracer } from "../src/tracer.js";

/** A tracer written from tracer.ts alone: it nests by the span objects it handed out. */
class CallLogTracer implements Tracer {
  readonly started: { name: string; options: SpanOptions | undefined; span: Span & { calls: unknown[][] } }[] = [];

  startSpan(name: string, options?: SpanOptions): Span {
    const calls: unknown[][] = [];
    const span = {
      calls,
      setAttributes: (attributes: unknown) => calls.push(["setAttributes", attributes]),
      addEvent: (event: string, attributes: unknown) => calls.push(["addEvent", event, attributes]),
      recordError: (error: unknown) => calls.push(["recordError", error]),
      end: () => calls.push(["end"]),
    };
    this.started.push({ name, options, span });
    return span;
  }

  parentOf(index: number): number | undefined {
    const parent = this.started[index]?.options?.parent;
    if (parent === undefined) return undefined;
    const found = this.started.findIndex((entry) => entry.span === parent);
    return found === -1 ? Number.NaN : found;
  }
}

describe("startSpan", () => {
  it("passes attributes, events and errors through the redactor and forwards end", () => {
    const tracer = new CallLogTracer();
    const span = startSpan(tracer, "tunnel.command", {
      attributes: { "tunnel.command.text": "sudo -S hunter22", skipped: undefined },
      redactor: new Redactor(["hunter22"]),
    });
    span.setAttributes({ "tunnel.command.text": "echo hunter22", "process.exit.code": 0 });
    span.addEvent("tunnel.retry", { "tunnel.note": "hunter22" });
    span.recordError(new ConnectError("lost hunter22"));
    span.end();
    const inner = tracer.started[0];
    expect(inner?.options).toEqual({ attributes: { "tunnel.command.text": `sudo -S ${REDACTED}` } });
    expect(inner?.span.calls[0]).toEqual(["setAttributes", { "tunnel.command.text": `echo ${REDACTED}`, "process.exit.code": 0 }]);
    expect(inner?.span.calls[1]).toEqual(["addEvent", "tunnel.retry", { "tunnel.note": REDACTED }]);
    const recorded = inner?.span.calls[2]?.[1];
    expect(recorded).toBeInstanceOf(ConnectError);
    expect((recorded as Error).message).toBe(`lost ${REDACTED}`);
    expect(inner?.span.calls[3]).toEqual(["end"]);
  });

  it("ends the tracer's span once, however often the caller ends it", () => {
    const tracer = new CallLogTracer();
    const span = startSpan(tracer, "tunnel.pool.acquire");
    span.end();
    span.end();
    expect(tracer.started[0]?.span.calls).toEqual([["end"]]);
  });

  it("hands the tracer its own span as parent, through several levels", () => {
    const tracer = new CallLogTracer();
    const operation = startSpan(tracer, "tunnel.command", { redactor: new Redactor() });
    const acquire = startSpan(tracer, "tunnel.pool.acquire", { parent: operation });
    startSpan(tracer, "tunnel.connect", { parent: acquire });
    expect(tracer.parentOf(0)).toBeUndefined();
    expect(tracer.parentOf(1)).toBe(0);
    expect(tracer.parentOf(2)).toBe(1);
  });

  it("redacts a child with the secrets of every ancestor, including ones added later", () => {
    const tracer = new CallLogTracer();
    const shared = new Redactor(["first-secret"]);
    const operation = startSpan(tracer, "tunnel.command", { redactor: shared.child(["second-secret"]) });
    const connect = startSpan(tracer, "tunnel.connect", { parent: operation, attributes: { note: "first-secret second-secret" } });
    shared.add("third-secret");
    connect.addEvent("tunnel.connect.retry", { note: "third-secret" });
    expect(tracer.started[1]?.options?.attributes).toEqual({ note: `${REDACTED} ${REDACTED}` });
    expect(tracer.started[1]?.span.calls[0]).toEqual(["addEvent", "tunnel.connect.retry", { note: REDACTED }]);
  });

  it("starts a root span when the parent came from another tracer, still redacted with the parent's secrets", () => {
    const first = new CallLogTracer();
    const second = new CallLogTracer();
    const operation = startSpan(first, "tunnel.command", { redactor: new Redactor(["hunter22"]) });
    startSpan(second, "tunnel.pool.acquire", { parent: operation, attributes: { note: "hunter22" } });
    expect(second.started[0]?.options).toEqual({ attributes: { note: REDACTED } });
  });

  it("passes a span the tracer returned directly on as the parent", () => {
    const tracer = new CallLogTracer();
    const own = tracer.startSpan("tunnel.command");
    startSpan(tracer, "tunnel.pool.acquire", { parent: own });
    expect(tracer.parentOf(1)).toBe(0);
  });

  it("never lets a failing tracer fail the caller", () => {
    const throwing: Tracer = {
      startSpan: () => {
        throw new Error("tracer down");
      },
    };
    const span = startSpan(throwing, "tunnel.command");
    expect(() => {
      span.setAttributes({ a: 1 });
      span.end();
    }).not.toThrow();
    const broken: Tracer = {
      startSpan: () => ({
        setAttributes: () => {
          throw new Error("exporter down");
        },
        addEvent: () => {
          throw new Error("exporter down");
        },
        recordError: () => {
          throw new Error("exporter down");
        },
        end: () => {
          throw new Error("exporter down");
        },
      }),
    };
    const child = startSpan(broken, "tunnel.connect", { parent: startSpan(broken, "tunnel.command") });
    expect(() => {
      child.setAttributes({ a: 1 });
      child.addEvent("x");
      child.recordError(new Error("y"));
      child.end();
    }).not.toThrow();
  });
});
