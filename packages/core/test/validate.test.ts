import { describe, expect, it } from "vitest";
import { TunnelError, ValidationError } from "../src/errors.js";
import type { Command, Script, Transfer } from "../src/types.js";
import { MAX_TIMEOUT_MS, parseMode, validateAccountName, validateCommand, validateScript, validateTarget, validateTransfer } from "../src/validate.js";

/** Runs `check` and returns the ValidationError it threw (failing the test when it did not throw one). */
function rejection(check: () => void): ValidationError {
  try {
    check();
  } catch (error) {
    expect(error).toBeInstanceOf(ValidationError);
    return error as ValidationError;
  }
  throw new Error("expected a ValidationError, nothing was thrown");
}

const command = (extra: Record<string, unknown>): Command => ({ host: "web-1", cmd: "uptime", ...extra }) as Command;
const script = (extra: Record<string, unknown>): Script => ({ host: "web-1", content: "echo hi", ...extra }) as Script;
const transfer = (extra: Record<string, unknown>): Transfer => ({ host: "web-1", source: "/a", destination: "/b", direction: "upload", ...extra }) as Transfer;

describe("validateTarget", () => {
  it.each(["web-1", "web-1.example.com", "10.0.0.1", "::1", "fe80::1%eth0", "2001:db8::42", "my_alias", "a".repeat(255)])("accepts host %s", (host) => {
    expect(() => validateTarget({ host })).not.toThrow();
  });

  it.each([
    ["", "must not be empty"],
    ["-oProxyCommand=x", 'must not start with "-"'],
    ["web 1", "whitespace"],
    ["web\t1", "whitespace"],
    ["web\n1", "whitespace"],
    ["web\u00001", "control"],
    ["web\u0085", "control"],
    ["a".repeat(256), "at most 255"],
    ["[::1]", "without brackets"],
    ["deploy@web-1", '"@"'],
    ["web;reboot", '";"'],
    ["$(id)", '"$"'],
    ["web`id`", '"`"'],
    ["a/b", '"/"'],
    ["web-1:2222", "put the port in `port`"],
  ])("rejects host %j (%s)", (host, message) => {
    const error = rejection(() => validateTarget({ host }));
    expect(error.field).toBe("host");
    expect(error.message).toContain(message);
  });

  it("rejects a missing or non-string host", () => {
    expect(rejection(() => validateTarget({} as never)).field).toBe("host");
    expect(rejection(() => validateTarget({ host: 42 } as never)).message).toContain("must be a string, got number");
    expect(rejection(() => validateTarget(null as never)).field).toBe("host");
  });

  it.each([1, 22, 2222, 65535])("accepts port %d", (port) => {
    expect(() => validateTarget({ host: "h", port })).not.toThrow();
  });

  it.each([0, -1, 65536, 22.5, Number.NaN, "22"])("rejects port %j", (port) => {
    const error = rejection(() => validateTarget({ host: "h", port } as never));
    expect(error.field).toBe("port");
    expect(error.message).toContain("1 to 65535");
  });

  it.each(["deploy", "www-data", "svc.app", "_apt", "Jöhn", "DOMAIN.user"])("accepts user %s", (user) => {
    expect(() => validateTarget({ host: "h", user })).not.toThrow();
  });

  it.each([
    ["", "must not be empty"],
    ["-oops", 'must not start with "-"'],
    ["a b", "whitespace"],
    ["a\nb", "whitespace"],
    ["a:b", '":"'],
    ["a@b", '"@"'],
    ["a/b", '"/"'],
    ["a;b", '";"'],
    ["u".repeat(257), "at most 256"],
  ])("rejects user %j", (user, message) => {
    const error = rejection(() => validateTarget({ host: "h", user }));
    expect(error.field).toBe("user");
    expect(error.message).toContain(message);
  });
});

describe("validateCommand", () => {
  it("accepts a complete, valid command", () => {
    expect(() =>
      validateCommand(
        command({
          port: 22,
          user: "deploy",
          sudo: { user: "postgres", password: "pw with spaces and 'quotes'" },
          env: { LC_ALL: "C", _X1: "any\nvalue $(with) `stuff`" },
          workingDir: "/srv/my app",
          timeout: 1500.5,
          signal: new AbortController().signal,
          stdin: "data",
          pty: { rows: 24, cols: 80, term: "xterm-256color" },
          idempotent: true,
          check: false,
          onStdout: () => {},
          onStderr: () => {},
          maxOutputBytes: 0,
        }),
      ),
    ).not.toThrow();
  });

  it("is a TunnelError with code VALIDATION, phase validate, not retryable, carrying the target", () => {
    const error = rejection(() => validateCommand(command({ user: "deploy", port: 2222, cmd: "" })));
    expect(TunnelError.is(error)).toBe(true);
    expect(error).toMatchObject({ code: "VALIDATION", phase: "validate", retryable: false, field: "cmd" });
    expect(error.target).toEqual({ host: "web-1", port: 2222, user: "deploy" });
    expect(error.message).toBe("cmd: must not be empty");
  });

  it.each([
    [{ cmd: "" }, "cmd", "must not be empty"],
    [{ cmd: "  \n\t" }, "cmd", "must not be empty"],
    [{ cmd: 42 }, "cmd", "must be a string"],
    [{ cmd: "echo a\0b" }, "cmd", "NUL byte (found at index 6)"],
    [{ env: { "1X": "v" } }, "env", 'invalid variable name "1X"'],
    [{ env: { "A-B": "v" } }, "env", "invalid variable name"],
    [{ env: { "": "v" } }, "env", "invalid variable name"],
    [{ env: { "A B": "v" } }, "env", "invalid variable name"],
    [{ env: { "A=B": "v" } }, "env", "invalid variable name"],
    [{ env: { A: 1 } }, "env.A", "must be a string"],
    [{ env: { A: "x\0y" } }, "env.A", "NUL byte"],
    [{ env: ["A=1"] }, "env", "must be an object"],
    [{ env: "A=1" }, "env", "must be an object"],
    [{ workingDir: "" }, "workingDir", "must not be empty"],
    [{ workingDir: "/a\0b" }, "workingDir", "NUL byte"],
    [{ timeout: 0 }, "timeout", "positive finite"],
    [{ timeout: -5 }, "timeout", "positive finite"],
    [{ timeout: Number.POSITIVE_INFINITY }, "timeout", "positive finite"],
    [{ timeout: Number.NaN }, "timeout", "positive finite"],
    [{ timeout: "10" }, "timeout", "positive finite"],
    [{ timeout: MAX_TIMEOUT_MS + 1 }, "timeout", "at most"],
    [{ maxOutputBytes: -1 }, "maxOutputBytes", "non-negative integer"],
    [{ maxOutputBytes: 1.5 }, "maxOutputBytes", "non-negative integer"],
    [{ sudo: "yes" }, "sudo", "must be true, false or"],
    [{ sudo: { user: "-u" } }, "sudo.user", "account name"],
    [{ sudo: { user: "bad name" } }, "sudo.user", "account name"],
    [{ sudo: { user: "a\0" } }, "sudo.user", "NUL byte"],
    [{ sudo: { password: "" } }, "sudo.password", "must not be empty"],
    [{ sudo: { password: 123 } }, "sudo.password", "must be a string"],
    [{ signal: {} }, "signal", "AbortSignal"],
    [{ stdin: 42 }, "stdin", "must be a string, a Uint8Array or a readable stream"],
    [{ pty: "yes" }, "pty", "must be true, false or"],
    [{ pty: { rows: 0 } }, "pty.rows", "1 to 65535"],
    [{ pty: { cols: 1.5 } }, "pty.cols", "1 to 65535"],
    [{ pty: { term: "xterm 256" } }, "pty.term", "terminal name"],
    [{ idempotent: "yes" }, "idempotent", "true or false"],
    [{ check: 1 }, "check", "true or false"],
    [{ onStdout: "log" }, "onStdout", "must be a function"],
    [{ onStderr: {} }, "onStderr", "must be a function"],
  ])("rejects %j (field %s)", (extra, field, message) => {
    const error = rejection(() => validateCommand(command(extra)));
    expect(error.field).toBe(field);
    expect(error.message).toContain(message);
  });

  it("accepts sudo's #uid form and numeric ids for sudo.user", () => {
    expect(() => validateCommand(command({ sudo: { user: "#1000" } }))).not.toThrow();
    expect(() => validateCommand(command({ sudo: { user: "1000" } }))).not.toThrow();
    expect(() => validateCommand(command({ sudo: true }))).not.toThrow();
  });

  it("never puts an env value or the sudo password into a message", () => {
    const secret = "hunter2-secret";
    for (const password of [`${secret}\n`, `${secret}\0`, `${secret}\r`]) {
      const error = rejection(() => validateCommand(command({ sudo: { password } })));
      expect(error.field).toBe("sudo.password");
      expect(error.message).not.toContain(secret);
      expect(JSON.stringify(error.toJSON())).not.toContain(secret);
    }
    const envError = rejection(() => validateCommand(command({ env: { TOKEN: `${secret}\0` } })));
    expect(envError.message).not.toContain(secret);
  });

  it("rejects strings that are not valid Unicode (lone surrogates) wherever they would reach the host", () => {
    for (const lone of ["\uD800", "a\uDC00b", "\uDBFFx", "x\uDFFF"]) {
      expect(rejection(() => validateCommand(command({ env: { A: lone } }))).field).toBe("env.A");
      expect(rejection(() => validateCommand(command({ cmd: `echo ${lone}` }))).field).toBe("cmd");
      expect(rejection(() => validateCommand(command({ workingDir: `/tmp/${lone}` }))).field).toBe("workingDir");
      expect(rejection(() => validateCommand(command({ sudo: { password: `pw${lone}` } }))).field).toBe("sudo.password");
    }
    // A well-formed pair is fine.
    expect(() => validateCommand(command({ env: { A: "\uD83D\uDE42 ok" } }))).not.toThrow();
  });

  it("explains why a password cannot hold a line break", () => {
    const error = rejection(() => validateCommand(command({ sudo: { password: "a\nb" } })));
    expect(error.message).toContain("line break");
  });

  it("rejects a missing command object", () => {
    expect(rejection(() => validateCommand(undefined as never)).field).toBe("command");
  });

  it("accepts a readable stream and bytes as stdin", async () => {
    const { Readable } = await import("node:stream");
    expect(() => validateCommand(command({ stdin: Readable.from(["x"]) }))).not.toThrow();
    expect(() => validateCommand(command({ stdin: new Uint8Array([1]) }))).not.toThrow();
  });
});

describe("validateScript", () => {
  it("accepts a complete, valid script", () => {
    expect(() =>
      validateScript(
        script({
          interpreter: "/usr/bin/python3.11",
          args: ["--flag", "", "it's", "$HOME"],
          env: { A: "1" },
          workingDir: "~/app",
          sudo: { user: "deploy" },
          timeout: 60_000,
        }),
      ),
    ).not.toThrow();
  });

  it("accepts a string, bytes and a readable stream as stdin", async () => {
    const { Readable } = await import("node:stream");
    for (const stdin of ["data", new Uint8Array([1]), Readable.from(["x"])]) expect(() => validateScript(script({ stdin }))).not.toThrow();
  });

  it.each(["bash", "python3", "node", "python3.12", "g++", "/bin/sh", "/usr/local/bin/my-interp_2"])("accepts interpreter %s", (interpreter) => {
    expect(() => validateScript(script({ interpreter }))).not.toThrow();
  });

  it.each([
    ["", "must not be empty"],
    ["/usr/bin/env python3", "no spaces"],
    ["bash -e", "no spaces"],
    ["'bash'", "plain command name"],
    ["/opt/my app/python", "no spaces"],
    ["-c", 'must not start with "-"'],
    ["..", "must name a program"],
    ["/", "absolute path"],
    ["./run", "plain command name"],
    ["a\0b", "NUL byte"],
    ["py;rm", "plain command name"],
  ])("rejects interpreter %j", (interpreter, message) => {
    const error = rejection(() => validateScript(script({ interpreter })));
    expect(error.field).toBe("interpreter");
    expect(error.message).toContain(message);
  });

  it.each([
    [{ content: "" }, "content", "must not be empty"],
    [{ content: " \n" }, "content", "must not be empty"],
    [{ content: undefined }, "content", "must be a string"],
    [{ args: "a b" }, "args", "array of strings"],
    [{ args: ["ok", 3] }, "args[1]", "must be a string"],
    [{ args: ["ok", "x\0"] }, "args[1]", "NUL byte"],
    [{ env: { "bad name": "x" } }, "env", "invalid variable name"],
    [{ host: "-x" }, "host", "must not start"],
    [{ stdin: 42 }, "stdin", "must be a string, a Uint8Array or a readable stream"],
    [{ stdin: { data: "x" } }, "stdin", "must be a string, a Uint8Array or a readable stream"],
  ])("rejects %j (field %s)", (extra, field, message) => {
    const error = rejection(() => validateScript(script(extra)));
    expect(error.field).toBe(field);
    expect(error.message).toContain(message);
  });

  it("rejects a missing script object", () => {
    expect(rejection(() => validateScript(null as never)).field).toBe("script");
  });
});

describe("validateTransfer", () => {
  it("accepts a complete, valid transfer", () => {
    expect(() =>
      validateTransfer(
        transfer({
          direction: "download",
          mode: "0755",
          owner: "deploy",
          group: "1000",
          recursive: true,
          overwrite: "skip",
          verify: "sha256",
          onProgress: () => {},
          timeout: 10,
        }),
      ),
    ).not.toThrow();
    expect(() => validateTransfer(transfer({ verify: false, mode: 0o600 }))).not.toThrow();
  });

  it.each([
    [{ source: "" }, "source", "must not be empty"],
    [{ destination: "a\0" }, "destination", "NUL byte"],
    [{ source: 7 }, "source", "must be a string"],
    [{ direction: "sideways" }, "direction", 'must be "upload" or "download", got "sideways"'],
    [{ direction: undefined }, "direction", "got undefined"],
    [{ mode: "0999" }, "mode", "digits 0-7"],
    [{ mode: "rwxr-xr-x" }, "mode", "octal mode"],
    [{ mode: 0o10000 }, "mode", "0o7777"],
    [{ mode: true }, "mode", "octal string"],
    [{ owner: "bad owner" }, "owner", "account name"],
    [{ owner: "-root" }, "owner", "account name"],
    [{ group: "" }, "group", "must not be empty"],
    [{ group: "#5" }, "group", "account name"],
    [{ recursive: "yes" }, "recursive", "true or false"],
    [{ overwrite: "merge" }, "overwrite", '"replace", "skip" or "error"'],
    [{ verify: "md5" }, "verify", '"sha256" or false'],
    [{ verify: true }, "verify", '"sha256" or false'],
    [{ onProgress: 1 }, "onProgress", "must be a function"],
    [{ port: 70000 }, "port", "1 to 65535"],
  ])("rejects %j (field %s)", (extra, field, message) => {
    const error = rejection(() => validateTransfer(transfer(extra)));
    expect(error.field).toBe(field);
    expect(error.message).toContain(message);
  });

  it("rejects a missing transfer object", () => {
    expect(rejection(() => validateTransfer(undefined as never)).field).toBe("transfer");
  });
});

describe("parseMode", () => {
  it.each([
    ["0755", 0o755],
    ["755", 0o755],
    ["0644", 0o644],
    ["0o600", 0o600],
    ["4755", 0o4755],
    ["07777", 0o7777],
    ["0", 0],
    [0o755, 0o755],
    [0, 0],
    [0o7777, 0o7777],
  ])("parses %j as %o", (mode, expected) => {
    expect(parseMode(mode)).toBe(expected);
  });

  it.each(["0999", "0758", "", "0x1ed", "-755", "17777", "077777", " 755", "7.5"])("rejects %j", (mode) => {
    expect(rejection(() => parseMode(mode)).field).toBe("mode");
  });

  it.each([-1, 0o10000, 1.5, Number.NaN])("rejects the number %d", (mode) => {
    expect(rejection(() => parseMode(mode)).field).toBe("mode");
  });

  it("names the field it was given", () => {
    expect(rejection(() => parseMode("9", "file.mode")).field).toBe("file.mode");
  });
});

describe("validateAccountName", () => {
  it.each(["root", "www-data", "_svc", "svc.app", "machine$", "0", "65534"])("accepts %s", (name) => {
    expect(() => validateAccountName(name, "owner")).not.toThrow();
  });

  it.each(["1abc", "a b", "-x", "a:b", "a/b", "x".repeat(257)])("rejects %j", (name) => {
    expect(rejection(() => validateAccountName(name, "owner")).field).toBe("owner");
  });
});
