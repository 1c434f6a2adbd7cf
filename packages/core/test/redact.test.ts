import { describe, expect, it } from "vitest";
import { CommandFailedError, ConnectError, RetriesExhaustedError, SudoError, TunnelError } from "../src/errors.js";
import { quote } from "../src/quote.js";
import { MIN_SECRET_LENGTH, REDACTED, Redactor } from "../src/redact.js";
import type { Attributes } from "../src/tracer.js";

describe("Redactor.redact", () => {
  it("replaces every occurrence of a registered secret", () => {
    const redactor = new Redactor(["hunter22"]);
    expect(redactor.redact("pw=hunter22; again hunter22!")).toBe(`pw=${REDACTED}; again ${REDACTED}!`);
  });

  it("leaves text without secrets untouched, and works with no secrets at all", () => {
    expect(new Redactor(["hunter22"]).redact("nothing to see")).toBe("nothing to see");
    expect(new Redactor().redact("plain text")).toBe("plain text");
    expect(new Redactor().empty).toBe(true);
    expect(new Redactor(["hunter22"]).empty).toBe(false);
  });

  it("prefers the longest secret where secrets overlap", () => {
    const redactor = new Redactor(["abc", "abcdef"]);
    expect(redactor.redact("xabcdefx abcx")).toBe(`x${REDACTED}x ${REDACTED}x`);
  });

  it("treats secrets as literal text, not patterns", () => {
    const redactor = new Redactor(["a.b*c(d)[e]$"]);
    expect(redactor.redact("x a.b*c(d)[e]$ aXbbc")).toBe(`x ${REDACTED} aXbbc`);
  });

  it("never mangles its own marker when a secret is part of it", () => {
    const redactor = new Redactor(["secretRED", "RED"]);
    expect(redactor.redact("secretRED then RED")).toBe(`${REDACTED} then ${REDACTED}`);
  });

  it("also removes the secret's shell-quoted form, as it appears on a prepared command line", () => {
    const secret = "it's a secret";
    const redactor = new Redactor([secret]);
    const commandLine = `env TOKEN=${quote(secret)} deploy`;
    expect(redactor.redact(commandLine)).toBe(`env TOKEN=${REDACTED} deploy`);
  });

  it("also removes the trimmed form of a secret read with a trailing newline", () => {
    const redactor = new Redactor(["s3cr3t-token\n"]);
    expect(redactor.redact("token s3cr3t-token used")).toBe(`token ${REDACTED} used`);
  });

  it(`redacts secrets shorter than ${MIN_SECRET_LENGTH} characters only as whole values`, () => {
    const redactor = new Redactor(["ab"]);
    expect(redactor.redact("ab")).toBe(REDACTED);
    expect(redactor.redact("cabbage")).toBe("cabbage");
  });

  it("ignores empty secrets", () => {
    const redactor = new Redactor([""]);
    expect(redactor.empty).toBe(true);
    expect(redactor.redact("anything")).toBe("anything");
  });

  it("sees secrets added after a pattern was built", () => {
    const redactor = new Redactor(["first-secret"]);
    expect(redactor.redact("second-secret")).toBe("second-secret");
    redactor.add("second-secret");
    expect(redactor.redact("first-secret second-secret")).toBe(`${REDACTED} ${REDACTED}`);
  });
});

describe("Redactor trees", () => {
  it("a child redacts its own secrets and its parent's, including ones the parent gains later", () => {
    const global = new Redactor(["global-token"]);
    const operation = global.child(["sudo-password"]);
    global.add("late-token");
    expect(operation.redact("global-token sudo-password late-token")).toBe(`${REDACTED} ${REDACTED} ${REDACTED}`);
  });

  it("a child's secrets never leak into the parent", () => {
    const global = new Redactor(["global-token"]);
    global.child(["sudo-password"]);
    expect(global.redact("sudo-password")).toBe("sudo-password");
  });

  it("merge redacts what any of its redactors does", () => {
    const merged = Redactor.merge(new Redactor(["alpha-secret"]), undefined, new Redactor(["beta-secret"]));
    expect(merged.redact("alpha-secret beta-secret")).toBe(`${REDACTED} ${REDACTED}`);
  });
});

describe("Redactor.redactAttributes", () => {
  it("redacts string and string-array values, keeps numbers, booleans and keys, drops undefined", () => {
    const redactor = new Redactor(["hunter22"]);
    const attributes: Attributes = {
      "tunnel.command.text": "echo hunter22",
      "tunnel.args": ["a", "hunter22"],
      "server.port": 22,
      "tunnel.command.sudo": true,
      "tunnel.missing": undefined,
    };
    expect(redactor.redactAttributes(attributes)).toEqual({
      "tunnel.command.text": `echo ${REDACTED}`,
      "tunnel.args": ["a", REDACTED],
      "server.port": 22,
      "tunnel.command.sudo": true,
    });
  });
});

describe("Redactor.redactError", () => {
  it("summarises a tunnel error with its code as type, redacting message, target, stack and cause", () => {
    const redactor = new Redactor(["hunter22"]);
    const cause = new Error("handshake said hunter22");
    const error = new ConnectError("cannot reach host with hunter22", {
      target: { host: "web-1", user: "deploy", port: 22 },
      cause,
    });
    const summary = redactor.redactError(error);
    expect(summary).toMatchObject({
      type: "CONNECT",
      code: "CONNECT",
      name: "ConnectError",
      message: `cannot reach host with ${REDACTED}`,
      phase: "connect",
      retryable: true,
      target: "deploy@web-1:22",
      cause: { name: "Error", message: `handshake said ${REDACTED}` },
    });
    expect(JSON.stringify(summary)).not.toContain("hunter22");
  });

  it("summarises plain errors by name and non-errors by their text", () => {
    const redactor = new Redactor(["hunter22"]);
    expect(redactor.redactError(new TypeError("bad hunter22"))).toMatchObject({
      type: "TypeError",
      code: undefined,
      message: `bad ${REDACTED}`,
    });
    expect(redactor.redactError("thrown hunter22")).toMatchObject({ type: "Error", message: `thrown ${REDACTED}` });
  });
});

describe("Redactor.redactErrorObject", () => {
  it("keeps the error's class and code but redacts its message, stack and causes", () => {
    const redactor = new Redactor(["hunter22"]);
    const first = new ConnectError("refused hunter22");
    const error = new RetriesExhaustedError([first, new ConnectError("refused again hunter22")]);
    const copy = redactor.redactErrorObject(error);
    expect(copy).not.toBe(error);
    expect(copy).toBeInstanceOf(RetriesExhaustedError);
    expect(TunnelError.is(copy)).toBe(true);
    expect(copy.code).toBe("RETRIES_EXHAUSTED");
    expect(copy.message).toBe(`failed after 2 attempts: refused again ${REDACTED}`);
    expect(copy.stack).not.toContain("hunter22");
    expect((copy.cause as Error).message).toBe(`refused again ${REDACTED}`);
    expect(copy.errors.map((item) => (item as Error).message)).toEqual([`refused ${REDACTED}`, `refused again ${REDACTED}`]);
    expect(error.message).toContain("hunter22");
  });

  it("returns the error itself when nothing needed redacting", () => {
    const error = new SudoError("sudo rejected the password", { reason: "wrong-password" });
    expect(new Redactor(["hunter22"]).redactErrorObject(error)).toBe(error);
  });

  it("keeps subclass fields", () => {
    const result = {
      exitCode: 1,
      signal: null,
      stdout: "",
      stderr: "",
      durationMs: 1,
      attempts: 1,
      host: "deploy@web-1:22",
      truncated: false,
    };
    const error = new CommandFailedError(result);
    const copy = new Redactor(["web-1"]).redactErrorObject(error);
    expect(copy).not.toBe(error);
    expect(copy.result).toBe(result);
    expect(copy.message).toBe(`the command exited with code 1 on deploy@${REDACTED}:22`);
  });
});
