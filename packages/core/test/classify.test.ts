import { describe, expect, it } from "vitest";
import { classifyError, isConnectionError } from "../src/classify.js";
import { errorExamples } from "@tunnel-sh/testing";
import { ConnectError, TimeoutError } from "../src/errors.js";
import type { ErrorCode } from "../src/errors.js";

/** One example error per code. */
const EXAMPLES = errorExamples();

type Verdicts = readonly [notStarted: boolean, startedIdempotent: boolean, startedNotIdempotent: boolean];

/** The rule of DESIGN.md, written out per code: [before start, after start + idempotent, after start + not idempotent]. */
const TABLE: Record<ErrorCode, Verdicts> = {
  CONNECT: [true, true, false],
  CONNECTION_LOST: [true, true, false],
  CHANNEL: [true, true, false],
  POOL_TIMEOUT: [true, true, false],
  TIMEOUT: [false, false, false],
  AUTHENTICATION: [false, false, false],
  HOST_KEY: [false, false, false],
  VALIDATION: [false, false, false],
  CONFIG: [false, false, false],
  SUDO: [false, false, false],
  ABORTED: [false, false, false],
  CIRCUIT_OPEN: [false, false, false],
  COMMAND_FAILED: [false, false, false],
  POOL_CLOSED: [false, false, false],
  TRANSFER: [false, false, false],
  RETRIES_EXHAUSTED: [false, false, false],
  UNSUPPORTED_HOST: [false, false, false],
  OUTCOME_UNKNOWN: [false, false, false],
};

describe("classifyError", () => {
  it("has an example for every error code", () => {
    for (const [code, error] of Object.entries(EXAMPLES)) expect(error.code).toBe(code);
  });

  for (const [code, [notStarted, startedIdempotent, startedNotIdempotent]] of Object.entries(TABLE)) {
    it(`${code}: before start ${notStarted}, started+idempotent ${startedIdempotent}, started ${startedNotIdempotent}`, () => {
      const error = EXAMPLES[code as ErrorCode];
      for (const idempotent of [false, true]) {
        expect(classifyError(error, { started: false, idempotent }).retryable).toBe(notStarted);
      }
      expect(classifyError(error, { started: true, idempotent: true }).retryable).toBe(startedIdempotent);
      expect(classifyError(error, { started: true, idempotent: false }).retryable).toBe(startedNotIdempotent);
    });
  }

  it("explains its verdicts", () => {
    expect(classifyError(EXAMPLES.CONNECT, { started: false, idempotent: false }).reason).toBe("the connection failed before the command started");
    expect(classifyError(EXAMPLES.CONNECTION_LOST, { started: true, idempotent: false }).reason).toBe(
      "the connection was lost while the command ran; the request is not idempotent",
    );
    expect(classifyError(EXAMPLES.CONNECTION_LOST, { started: true, idempotent: true }).reason).toContain("is idempotent");
    expect(classifyError(EXAMPLES.TIMEOUT, { started: true, idempotent: true }).reason).toContain("time budget");
    expect(classifyError(EXAMPLES.AUTHENTICATION, { started: false, idempotent: true }).reason).toContain("authentication failed");
  });

  it("needs positive evidence: a connection lost after the command was handed over counts as started", () => {
    const lost = EXAMPLES.CONNECTION_LOST;
    expect(classifyError(lost, { started: false, requested: true, idempotent: false }).retryable).toBe(false);
    expect(classifyError(lost, { started: false, requested: true, idempotent: true }).retryable).toBe(true);
    expect(classifyError(lost, { started: false, requested: false, idempotent: false }).retryable).toBe(true);
    // A refused connect or channel is the server saying no: evidence enough, whatever was requested.
    expect(classifyError(EXAMPLES.CONNECT, { started: false, requested: true, idempotent: false }).retryable).toBe(true);
    expect(classifyError(EXAMPLES.CHANNEL, { started: false, requested: true, idempotent: false }).retryable).toBe(true);
  });

  it("never retries errors that are not tunnel errors", () => {
    for (const error of [new Error("boom"), new TypeError("x is undefined"), "a string", undefined, null, { code: "CONNECT" }]) {
      expect(classifyError(error, { started: false, idempotent: true })).toEqual({
        retryable: false,
        reason: "not a tunnel error (unclassified)",
      });
    }
  });

  it("lets an error's own retryable: false veto a retry, but never lets retryable: true force one", () => {
    const permanent = new ConnectError("getaddrinfo ENOTFOUND no-such-host.invalid", { retryable: false });
    const verdict = classifyError(permanent, { started: false, idempotent: true });
    expect(verdict.retryable).toBe(false);
    expect(verdict.reason).toContain("marked not retryable");
    const pushy = new TimeoutError("slow", { retryable: true });
    expect(classifyError(pushy, { started: false, idempotent: true }).retryable).toBe(false);
  });

  it("recognises errors branded by another copy of core", () => {
    const foreign = { [Symbol.for("tunnel.error")]: true, code: "CONNECT", retryable: true, message: "refused" };
    expect(classifyError(foreign, { started: false, idempotent: false }).retryable).toBe(true);
    const unknownCode = { [Symbol.for("tunnel.error")]: true, code: "FROM_THE_FUTURE", retryable: true };
    expect(classifyError(unknownCode, { started: false, idempotent: true })).toEqual({
      retryable: false,
      reason: "unknown error code FROM_THE_FUTURE",
    });
  });
});

describe("isConnectionError", () => {
  it("is true exactly for CONNECT and CONNECTION_LOST", () => {
    const connectionCodes = Object.values(EXAMPLES)
      .filter((error) => isConnectionError(error))
      .map((error) => error.code);
    expect(connectionCodes.sort()).toEqual(["CONNECT", "CONNECTION_LOST"]);
    expect(isConnectionError(new Error("ECONNRESET"))).toBe(false);
    expect(isConnectionError(undefined)).toBe(false);
  });
});
