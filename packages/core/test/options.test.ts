import { describe, expect, it } from "vitest";
import {
  ConfigError,
  DefaultExecutorConfig,
  Executor,
  RENAMED_SSH_TRANSPORT_OPTIONS,
  SSH_TRANSPORT_OPTIONS,
  parseProxyJump,
  rejectUnknownOptions,
  resolveSshTransportOptions,
  type SshTransportOptions,
} from "../src/index.js";
import { CircuitBreaker, CircuitBreakerRegistry } from "../src/internal.js";

function configError(run: () => unknown): ConfigError {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return error as ConfigError;
  }
  throw new Error("expected a ConfigError");
}

describe("rejectUnknownOptions", () => {
  it("passes known keys and undefined (all defaults)", () => {
    expect(() => rejectUnknownOptions({ stream: 1, format: "json" }, ["stream", "format", "level"], "ConsoleTracer")).not.toThrow();
    expect(() => rejectUnknownOptions(undefined, ["stream"], "ConsoleTracer")).not.toThrow();
  });

  it("names the unknown key and the owner, and suggests the closest known name", () => {
    const error = configError(() => rejectUnknownOptions({ strem: 1 }, ["stream", "format"], "ConsoleTracer"));
    expect(error.field).toBe("strem");
    expect(error.code).toBe("CONFIG");
    expect(error.retryable).toBe(false);
    expect(error.phase).toBe("validate");
    expect(error.message).toBe("strem: is not an option of ConsoleTracer (did you mean stream?); known options: stream, format");
  });

  it("suggests nothing for a name far from every known one", () => {
    expect(configError(() => rejectUnknownOptions({ colour: true }, ["stream"], "ConsoleTracer")).message).toBe(
      "colour: is not an option of ConsoleTracer; known options: stream",
    );
  });

  it("says the new name of a renamed option", () => {
    const error = configError(() =>
      rejectUnknownOptions({ privateKey: "/k" }, ["identityFile"], "OpenSshTransport", { renamed: { privateKey: "identityFile" } }),
    );
    expect(error.field).toBe("privateKey");
    expect(error.message).toBe("privateKey: is not an option of OpenSshTransport: it is now called identityFile");
  });

  it("prefixes the path of a nested object to the field", () => {
    const error = configError(() => rejectUnknownOptions({ cooldwn: 1 }, ["cooldown"], "ExecutorConfig", { path: "breaker" }));
    expect(error.field).toBe("breaker.cooldwn");
    expect(error.message).toContain("(did you mean breaker.cooldown?)");
  });

  it("refuses a non-object without showing a string's content", () => {
    for (const value of [null, 5, "s3cret", [], true]) {
      const error = configError(() => rejectUnknownOptions(value, ["stream"], "ConsoleTracer"));
      expect(error.field).toBe("options");
      expect(error.message).not.toContain("s3cret");
    }
  });

  it("does not mistake inherited names for known options", () => {
    expect(configError(() => rejectUnknownOptions({ toString: 1 }, ["stream"], "ConsoleTracer")).field).toBe("toString");
    expect(configError(() => rejectUnknownOptions({ constructor: 1 }, ["stream"], "ConsoleTracer", { renamed: {} })).field).toBe("constructor");
  });
});

describe("the shared SSH transport options", () => {
  it("defaults: strict host keys, connect 10 s, ready connect + 20 s, keepalive 15 s x 3, 10 channels", () => {
    expect(resolveSshTransportOptions({})).toEqual({
      user: undefined,
      identityFiles: [],
      certificateFiles: [],
      identitiesOnly: undefined,
      agent: undefined,
      forwardAgent: undefined,
      password: undefined,
      onKeyboardInteractive: undefined,
      knownHostsFiles: [],
      hostKeyChecking: "strict",
      configFile: undefined,
      proxyJump: undefined,
      connectTimeout: 10_000,
      readyTimeout: 30_000,
      keepaliveInterval: 15_000,
      keepaliveCountMax: 3,
      maxChannels: 10,
    });
    expect(resolveSshTransportOptions({ connectTimeout: 5000 }).readyTimeout).toBe(25_000);
  });

  it("checks certificateFile, forwardAgent and onKeyboardInteractive", () => {
    expect(resolveSshTransportOptions({ certificateFile: "/k-cert.pub" }).certificateFiles).toEqual(["/k-cert.pub"]);
    const field = (options: Record<string, unknown>) => {
      try {
        resolveSshTransportOptions(options);
      } catch (error) {
        return (error as ConfigError).field;
      }
      return undefined;
    };
    expect(field({ certificateFile: "" })).toBe("certificateFile");
    expect(field({ certificateFile: ["/a", 3] })).toBe("certificateFile[1]");
    expect(field({ forwardAgent: "yes" })).toBe("forwardAgent");
    expect(field({ forwardAgent: true, agent: false })).toBe("forwardAgent");
    expect(field({ onKeyboardInteractive: "123456" })).toBe("onKeyboardInteractive");
    const handler = () => ["123456"];
    expect(resolveSshTransportOptions({ forwardAgent: true, onKeyboardInteractive: handler })).toMatchObject({
      forwardAgent: true,
      onKeyboardInteractive: handler,
    });
  });

  it("normalises one path or a list of paths, and jump hosts", () => {
    const resolved = resolveSshTransportOptions({ identityFile: "/k", knownHostsFile: ["/a", "/b"], proxyJump: "alice@jump1:2222,jump2" });
    expect(resolved.identityFiles).toEqual(["/k"]);
    expect(resolved.knownHostsFiles).toEqual(["/a", "/b"]);
    expect(resolved.proxyJump).toEqual([{ host: "jump1", port: 2222, user: "alice" }, { host: "jump2" }]);
    expect(resolveSshTransportOptions({ proxyJump: [{ host: "j", port: 22 }] }).proxyJump).toEqual([{ host: "j", port: 22 }]);
    expect(resolveSshTransportOptions({ configFile: false, agent: false }).configFile).toBe(false);
  });

  const bad: Array<[string, SshTransportOptions]> = [
    ["user", { user: "" }],
    ["user", { user: "a b" }],
    ["identityFile", { identityFile: 3 as never }],
    ["identityFile[1]", { identityFile: ["/k", ""] }],
    ["identityFile", { identityFile: "/k\n-oProxyCommand=x" }],
    ["identitiesOnly", { identitiesOnly: 1 as never }],
    ["agent", { agent: true as never }],
    ["password", { password: "" }],
    ["knownHostsFile", { knownHostsFile: [] }],
    ["knownHostsFile", { knownHostsFile: "/k", hostKeyChecking: "insecure-accept-any" }],
    ["hostKeyChecking", { hostKeyChecking: "no" as never }],
    ["configFile", { configFile: 0 as never }],
    ["proxyJump", { proxyJump: 22 as never }],
    ["proxyJump", { proxyJump: "jump:0" }],
    ["proxyJump.host", { proxyJump: "-oProxyCommand=x" }],
    ["proxyJump[0].user", { proxyJump: [{ host: "j", user: "a;b" }] }],
    ["connectTimeout", { connectTimeout: 0 }],
    ["readyTimeout", { readyTimeout: 1.5 }],
    ["keepaliveInterval", { keepaliveInterval: -1 }],
    ["keepaliveCountMax", { keepaliveCountMax: 0 }],
    ["maxChannels", { maxChannels: 1001 }],
  ];
  it.each(bad)("refuses a bad %s", (field, options) => {
    expect(configError(() => resolveSshTransportOptions(options)).field).toBe(field);
  });

  it("says what was given instead of a path, never a string's content", () => {
    expect(configError(() => resolveSshTransportOptions({ knownHostsFile: 7 as never })).message).toBe(
      "knownHostsFile: must be a path or a non-empty list of paths, got number 7",
    );
    expect(configError(() => resolveSshTransportOptions({ password: 1234 as never })).message).toBe("password: must be a non-empty string, got number 1234");
  });

  it("every renamed option points at a shared option", () => {
    for (const renamed of Object.values(RENAMED_SSH_TRANSPORT_OPTIONS)) expect(SSH_TRANSPORT_OPTIONS).toContain(renamed);
  });
});

describe("parseProxyJump", () => {
  it("parses OpenSSH's -J list", () => {
    expect(parseProxyJump("alice@jump1:2222,jump2,[::1]:22")).toEqual([
      { host: "jump1", port: 2222, user: "alice" },
      { host: "jump2" },
      { host: "::1", port: 22 },
    ]);
    expect(parseProxyJump("none")).toEqual([]);
    expect(parseProxyJump("ssh://bob@jump")).toEqual([{ host: "jump", user: "bob" }]);
  });
});

describe("Executor options", () => {
  const pool = { acquire: () => Promise.reject(new Error("unused")), stats: () => ({}), close: () => Promise.resolve() } as never;

  it("refuses an unknown option by name", () => {
    const error = configError(() => new Executor(pool, DefaultExecutorConfig(), undefined, { cleanupTimout: 5 } as never));
    expect(error.field).toBe("cleanupTimout");
    expect(error.message).toContain("is not an option of Executor (did you mean cleanupTimeout?)");
  });

  it("refuses a bad cleanupTimeout and an unknown config field", () => {
    expect(configError(() => new Executor(pool, DefaultExecutorConfig(), undefined, { cleanupTimeout: -1 })).field).toBe("cleanupTimeout");
    expect(configError(() => new Executor(pool, DefaultExecutorConfig(), undefined, { redactor: ["secret"] as never })).field).toBe("redactor");
    expect(configError(() => new Executor(pool, { ...DefaultExecutorConfig().toJSON(), retries: 2 } as never)).field).toBe("retries");
  });
});

describe("CircuitBreaker options", () => {
  it("refuses an unknown option by name, on the breaker and the registry", () => {
    const settings = { failureThreshold: 3, cooldown: 1000 };
    expect(configError(() => new CircuitBreaker("key", { ...settings, threshold: 2 } as never)).message).toContain(
      "threshold: is not an option of CircuitBreaker",
    );
    expect(configError(() => new CircuitBreakerRegistry({ ...settings, cooldownMs: 5 } as never)).message).toContain(
      "cooldownMs: is not an option of CircuitBreakerRegistry (did you mean cooldown?)",
    );
    expect(new CircuitBreakerRegistry({ ...settings, now: () => 0, onStateChange: () => {} }).state("key")).toBe("closed");
  });
});
