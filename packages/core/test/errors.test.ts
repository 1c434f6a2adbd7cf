import { errorExamples } from "@tunnel-sh/testing";
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
  PoolClosedError,
  RetriesExhaustedError,
  SudoError,
  TimeoutError,
  TransferError,
  TunnelError,
  ValidationError,
  hasCode,
} from "../src/errors.js";
import type { ErrorCode, ErrorPhase } from "../src/errors.js";
import type { Result } from "../src/types.js";

const target = { host: "web-1", user: "deploy", port: 2222 };
const result: Result = { exitCode: 3, signal: null, stdout: "", stderr: "boom", durationMs: 5, attempts: 1, host: "deploy@web-1:2222", truncated: false };

describe("the error subclasses", () => {
  // Each code's example from the testing kit, with the class, phase and retryable flag its code stands for.
  const examples = errorExamples();
  it.each<[ErrorCode, string, ErrorPhase, boolean]>([
    ["VALIDATION", "ValidationError", "validate", false],
    ["CONFIG", "ConfigError", "validate", false],
    ["CONNECT", "ConnectError", "connect", true],
    ["CONNECTION_LOST", "ConnectError", "connect", true],
    ["AUTHENTICATION", "AuthenticationError", "auth", false],
    ["HOST_KEY", "HostKeyError", "connect", false],
    ["CHANNEL", "ChannelError", "channel", true],
    ["TIMEOUT", "TimeoutError", "exec", false],
    ["ABORTED", "AbortError", "exec", false],
    ["TRANSFER", "TransferError", "transfer", false],
    ["SUDO", "SudoError", "exec", false],
    ["CIRCUIT_OPEN", "CircuitOpenError", "connect", false],
    ["COMMAND_FAILED", "CommandFailedError", "exec", false],
    ["RETRIES_EXHAUSTED", "RetriesExhaustedError", "exec", false],
    ["POOL_CLOSED", "PoolClosedError", "connect", false],
    ["POOL_TIMEOUT", "PoolTimeoutError", "connect", true],
    ["OUTCOME_UNKNOWN", "OutcomeUnknownError", "exec", false],
    ["UNSUPPORTED_HOST", "UnsupportedHostError", "exec", false],
  ])("%s: name %s, phase %s, retryable %s", (code, name, phase, retryable) => {
    const error = examples[code];
    expect(error).toBeInstanceOf(TunnelError);
    expect(error).toBeInstanceOf(Error);
    expect(error.name).toBe(name);
    expect(error.code).toBe(code);
    expect(error.phase).toBe(phase);
    expect(error.retryable).toBe(retryable);
    expect(TunnelError.is(error)).toBe(true);
    expect(hasCode(error, code)).toBe(true);
  });

  it("keeps the details each subclass adds", () => {
    expect(new ValidationError("env.PATH", "bad").field).toBe("env.PATH");
    expect(new ValidationError("env.PATH", "bad").message).toBe("env.PATH: bad");
    expect(new ConfigError("breaker.cooldown", "bad").field).toBe("breaker.cooldown");
    expect(new HostKeyError("changed", { fingerprint: "SHA256:abc" }).fingerprint).toBe("SHA256:abc");
    expect(new ChannelError("open failed", { refused: true }).refused).toBe(true);
    expect(new ChannelError("open failed").refused).toBe(false);
    expect(new TimeoutError("slow", { timeoutMs: 500 }).timeoutMs).toBe(500);
    expect(new AbortError().message).toBe("the operation was aborted");
    expect(new SudoError("no", { reason: "wrong-password" }).reason).toBe("wrong-password");
    expect(new CircuitOpenError("open", { retryAfterMs: 42 }).retryAfterMs).toBe(42);
    expect(new PoolClosedError().message).toBe("the connection pool is closed");
  });

  it("lets callers adjust phase and retryable only where the vocabulary allows it", () => {
    expect(new ConnectError("dns", { retryable: false }).retryable).toBe(false);
    expect(new ConnectError("lost", { lost: true, phase: "exec" }).phase).toBe("exec");
    expect(new ChannelError("x", { phase: "transfer" }).phase).toBe("transfer");
    expect(new TimeoutError("x", { phase: "connect" }).phase).toBe("connect");
    expect(new TransferError("x", { retryable: true }).retryable).toBe(true);
    // These are never retryable, whatever the caller says.
    expect(new AuthenticationError("x", { retryable: true }).retryable).toBe(false);
    expect(new HostKeyError("x", { retryable: true }).retryable).toBe(false);
    expect(new SudoError("x", { reason: "other", retryable: true }).retryable).toBe(false);
    expect(new ValidationError("f", "x", { retryable: true }).retryable).toBe(false);
  });

  it("describes a failed command by its exit code or signal and carries the result", () => {
    const failed = new CommandFailedError(result);
    expect(failed.message).toBe("the command exited with code 3 on deploy@web-1:2222");
    expect(failed.result).toBe(result);
    expect(new CommandFailedError({ ...result, exitCode: null, signal: "SIGKILL" }).message).toBe("the command was killed by SIGKILL on deploy@web-1:2222");
  });

  it("keeps every attempt's error when retries are exhausted, the last one as cause and phase source", () => {
    const errors = [new ConnectError("refused 1"), new ChannelError("open failed")];
    const exhausted = new RetriesExhaustedError(errors, { target });
    expect(exhausted.errors).toEqual(errors);
    expect(exhausted.attempts).toBe(2);
    expect(exhausted.cause).toBe(errors[1]);
    expect(exhausted.phase).toBe("channel");
    expect(exhausted.message).toBe("failed after 2 attempts: open failed");
    expect(new RetriesExhaustedError(["plain string"]).message).toBe("failed after 1 attempts: plain string");
  });

  it("says whether the attempts or the deadline ran out, the attempts by default", () => {
    expect(new RetriesExhaustedError([new ConnectError("refused")]).reason).toBe("attempts");
    expect(new RetriesExhaustedError([new ConnectError("refused")], { reason: "deadline" }).reason).toBe("deadline");
  });

  it("keeps the original error as cause", () => {
    const original = Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:22"), { code: "ECONNREFUSED" });
    const error = new ConnectError("connection refused", { cause: original, target });
    expect(error.cause).toBe(original);
    expect(error.target).toBe(target);
    expect(new ConnectError("no cause").cause).toBeUndefined();
  });
});

/** One example of every class (the testing kit's examples, one a code, less the second `ConnectError`). */
const everyClass = () => [...new Map(Object.values(errorExamples()).map((error) => [error.constructor, error])).values()];

describe("each error class's is()", () => {
  it("recognises its own class and no other", () => {
    const errors = everyClass();
    const classes = errors.map((error) => error.constructor as typeof TunnelError);
    for (const [index, error] of errors.entries()) {
      for (const [other, errorClass] of classes.entries()) {
        expect(errorClass.is(error), `${errorClass.name}.is(${error.name})`).toBe(index === other);
      }
      expect(TunnelError.is(error)).toBe(true);
    }
    for (const errorClass of classes) {
      for (const value of [new Error("x"), { code: "AUTHENTICATION" }, TunnelError.prototype, null, undefined, "AUTHENTICATION"]) {
        expect(errorClass.is(value)).toBe(false);
      }
    }
  });

  it("recognises errors from a second installed copy of core and narrows to the class, fields included", async () => {
    const specifier = "../src/errors.js?another-copy";
    const copy = (await import(specifier)) as typeof import("../src/errors.js");
    const foreign: unknown = new copy.HostKeyError("changed", { fingerprint: "SHA256:abc" });
    expect(foreign instanceof HostKeyError).toBe(false);
    expect(HostKeyError.is(foreign)).toBe(true);
    if (HostKeyError.is(foreign)) expect(foreign.fingerprint).toBe("SHA256:abc");
    const exhausted: unknown = new copy.RetriesExhaustedError([new Error("x")], { reason: "deadline" });
    expect(RetriesExhaustedError.is(exhausted) && exhausted.reason).toBe("deadline");
    expect(AuthenticationError.is(foreign)).toBe(false);
    expect(copy.SudoError.is(new SudoError("no", { reason: "not-allowed" }))).toBe(true);
  });

  it("keeps recognising an error after redaction copied it", async () => {
    const { Redactor } = await import("../src/redact.js");
    const copy = new Redactor(["hunter22"]).redactErrorObject(new AuthenticationError("denied for hunter22"));
    expect(copy.message).not.toContain("hunter22");
    expect(AuthenticationError.is(copy)).toBe(true);
  });
});

describe("TunnelError.is", () => {
  it("recognises an error from a second installed copy of core, where instanceof fails", async () => {
    // A query string makes the module loader evaluate errors.ts again: new classes, same Symbol.for brand.
    const specifier = "../src/errors.js?second-copy";
    const copy = (await import(specifier)) as typeof import("../src/errors.js");
    expect(copy.TunnelError).not.toBe(TunnelError);
    const foreign = new copy.ConnectError("refused");
    expect(foreign instanceof TunnelError).toBe(false);
    expect(TunnelError.is(foreign)).toBe(true);
    expect(hasCode(foreign, "CONNECT")).toBe(true);
    expect(copy.TunnelError.is(new AuthenticationError("denied"))).toBe(true);
  });

  it("recognises any object carrying the shared brand", () => {
    const branded = { [Symbol.for("tunnel.error")]: true, code: "TIMEOUT", message: "slow" };
    expect(TunnelError.is(branded)).toBe(true);
    expect(hasCode(branded, "TIMEOUT")).toBe(true);
    expect(hasCode(branded, "CONNECT")).toBe(false);
  });

  it("rejects everything else", () => {
    for (const value of [
      new Error("x"),
      { code: "CONNECT" },
      { [Symbol("tunnel.error")]: true },
      { [Symbol.for("tunnel.error")]: "yes" },
      null,
      undefined,
      "CONNECT",
      42,
    ]) {
      expect(TunnelError.is(value)).toBe(false);
    }
  });
});

describe("toJSON", () => {
  it("gives a plain summary with the target rendered and the cause summarised", () => {
    const cause = new Error("read ECONNRESET");
    const error = new ConnectError("connection lost", { lost: true, cause, target });
    expect(error.toJSON()).toEqual({
      name: "ConnectError",
      code: "CONNECTION_LOST",
      message: "connection lost",
      phase: "connect",
      retryable: true,
      target: "deploy@web-1:2222",
      cause: { name: "Error", message: "read ECONNRESET" },
    });
    expect(JSON.parse(JSON.stringify(error))).toEqual(JSON.parse(JSON.stringify(error.toJSON())));
  });

  it("leaves target and cause out when absent or not an Error", () => {
    const json = new TimeoutError("slow", { cause: "a string" }).toJSON();
    expect(json.target).toBeUndefined();
    expect(json.cause).toBeUndefined();
  });
});
