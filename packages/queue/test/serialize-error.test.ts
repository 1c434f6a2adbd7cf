import { describe, expect, it } from "vitest";
import {
  AbortError,
  AuthenticationError,
  ChannelError,
  CircuitOpenError,
  CommandFailedError,
  ConfigError,
  ConnectError,
  HostKeyError,
  OutcomeUnknownError,
  PoolClosedError,
  PoolTimeoutError,
  RetriesExhaustedError,
  SudoError,
  TimeoutError,
  TransferError,
  TunnelError,
  UnsupportedHostError,
  ValidationError,
} from "@tunnel-sh/core";
import { QueueProducer, QueueWorker, deserializeError, serializeError } from "../src/index.js";

const target = { host: "web-1", port: 22, user: "deploy" };
const result = { exitCode: 3, signal: null, stdout: "", stderr: "no\n", durationMs: 5, attempts: 1, host: "deploy@web-1:22", truncated: false };

describe("errors through the queue", () => {
  it.each([
    new ValidationError("env.BAD-NAME", "is not a valid name", { target }),
    new ConfigError("sudoSecret", "no such secret", { target }),
    new ConnectError("connect ECONNREFUSED", { target }),
    new ConnectError("connection lost", { target, lost: true }),
    new AuthenticationError("all methods failed", { target }),
    new HostKeyError("host key changed", { target, fingerprint: "SHA256:abc" }),
    new ChannelError("refused", { target, refused: true }),
    new TimeoutError("timed out after 5 ms", { target, timeoutMs: 5 }),
    new AbortError(undefined, { target }),
    new TransferError("no such file", { target }),
    new SudoError("wrong password", { target, reason: "wrong-password" }),
    new CircuitOpenError("open", { target, retryAfterMs: 1_000 }),
    new CommandFailedError(result, { target }),
    new RetriesExhaustedError([new ConnectError("a", { target }), new ConnectError("b", { target })], { target }),
    new RetriesExhaustedError([new ConnectError("a", { target })], { target, reason: "deadline" }),
    new PoolClosedError(undefined, { target }),
    new PoolTimeoutError("busy", { target }),
    new OutcomeUnknownError("the worker stopped", { target }),
    new UnsupportedHostError("the login shell did not run the command", { target, reason: "shell", detail: "This account is currently not available." }),
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
