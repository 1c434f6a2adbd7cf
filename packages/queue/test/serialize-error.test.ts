import { describe, expect, it } from "vitest";
import { ConfigError, ConnectError, OutcomeUnknownError, RetriesExhaustedError, TunnelError, UnsupportedHostError } from "@tunnel-sh/core";
import { errorExamples } from "@tunnel-sh/testing";
import { QueueProducer, QueueWorker, deserializeError, serializeError } from "../src/index.js";

const target = { host: "web-1", port: 22, user: "deploy" };

describe("errors through the queue", () => {
  it.each([
    // Every code once, each with its details; then the variants a code has.
    ...Object.values(errorExamples({ target })),
    new RetriesExhaustedError([new ConnectError("a", { target })], { target, reason: "deadline" }),
    new UnsupportedHostError("no SFTP", { target, reason: "sftp" }),
  ])("%s comes back as the same class with the same code, message, phase, target and details", (error) => {
    const back = deserializeError(JSON.parse(JSON.stringify(serializeError(error))));
    expect(back.constructor).toBe(error.constructor);
    expect(TunnelError.is(back)).toBe(true);
    expect(back.toJSON()).toEqual(error.toJSON());
    for (const detail of ["field", "fingerprint", "refused", "timeoutMs", "reason", "detail", "retryAfterMs", "result", "attempts"]) {
      expect((back as unknown as Record<string, unknown>)[detail]).toEqual((error as unknown as Record<string, unknown>)[detail]);
    }
  });

  it("reports an error that is not a tunnel error as an unknown outcome", () => {
    const back = deserializeError(serializeError(new Error("worker bug")));
    expect(back).toBeInstanceOf(OutcomeUnknownError);
    expect(back.message).toContain("worker bug");
  });
});

describe("options", () => {
  it("refuses bad producer and worker options with ConfigError, before connecting", () => {
    expect(() => new QueueProducer({ redis: "http://localhost" })).toThrow(ConfigError);
    expect(() => new QueueProducer({ redis: "redis://127.0.0.1:1", queue: "a:b" })).toThrow(ConfigError);
    expect(() => new QueueProducer({ redis: "redis://127.0.0.1:1", runId: "x:y" })).toThrow(ConfigError);
    expect(() => new QueueProducer({ redis: "redis://127.0.0.1:1", keepJobsFor: 0 })).toThrow(ConfigError);
    expect(() => new QueueProducer({ redis: "redis://127.0.0.1:1", runID: "x" } as never)).toThrow(/runID/);
    const runner = {
      runCommand: () => Promise.reject(new Error("unused")),
      runScript: () => Promise.reject(new Error("unused")),
      transferFile: () => Promise.reject(new Error("unused")),
    };
    expect(() => new QueueWorker({ redis: "redis://127.0.0.1:1", runner: {} as never })).toThrow(ConfigError);
    expect(() => new QueueWorker({ redis: "redis://127.0.0.1:1", runner, concurrency: 0 })).toThrow(ConfigError);
    expect(() => new QueueWorker({ redis: "redis://127.0.0.1:1", runner, secrets: "password" as never })).toThrow(ConfigError);
    expect(() => new QueueWorker({ redis: "redis://127.0.0.1:1", runner, concurency: 2 } as never)).toThrow(/concurency/);
  });
});
