import { ConfigError, hasCode } from "@tunnel-sh/core";
import { FakeTransport } from "@tunnel-sh/testing";
import { describe, expect, it } from "vitest";
import { ConnectionPool, DefaultPoolConfig, generateConnectionKey, resolvePoolConfig } from "../src/index.js";

function configError(run: () => unknown): ConfigError {
  try {
    run();
  } catch (error) {
    expect(hasCode(error, "CONFIG")).toBe(true);
    return error as ConfigError;
  }
  throw new Error("expected a ConfigError");
}

describe("DefaultPoolConfig", () => {
  it("is sized for sshd's defaults and is a fresh object each call", () => {
    const config = DefaultPoolConfig();
    expect(config.maxChannelsPerConnection).toBe(10);
    expect(config.maxConnectingPerKey).toBeLessThan(10);
    expect(DefaultPoolConfig()).not.toBe(config);
    expect(resolvePoolConfig(config)).toEqual(config);
  });

  it("fills missing fields with the defaults", () => {
    expect(resolvePoolConfig({ maxConnectionsPerKey: 2 })).toEqual({ ...DefaultPoolConfig(), maxConnectionsPerKey: 2 });
  });
});

describe("pool config validation", () => {
  it.each([
    ["maxConnectionsPerKey", 0],
    ["maxConnections", 1.5],
    ["maxChannelsPerConnection", -1],
    ["maxConnectingPerKey", Infinity],
    ["acquireTimeoutMs", -1],
    ["acquireTimeoutMs", 2 ** 31],
    ["idleTimeoutMs", 0],
    ["pingTimeoutMs", Infinity],
    ["minIdlePerKey", Number.NaN],
    ["maxWaiting", "10"],
  ])("rejects %s = %s with a ConfigError naming the field", (field, value) => {
    const error = configError(() => resolvePoolConfig({ [field]: value } as never));
    expect(error.field).toBe(field);
  });

  it("accepts Infinity where a limit can be switched off", () => {
    const config = resolvePoolConfig({
      acquireTimeoutMs: Infinity,
      idleTimeoutMs: Infinity,
      maxLifetimeMs: Infinity,
      pingAfterIdleMs: Infinity,
      maxWaiting: Infinity,
    });
    expect(config.idleTimeoutMs).toBe(Infinity);
  });

  it("rejects unknown fields (typos) by name", () => {
    expect(configError(() => resolvePoolConfig({ maxConnection: 3 } as never)).field).toBe("maxConnection");
    expect(configError(() => new ConnectionPool(new FakeTransport(), { idleTimeout: 5 } as never)).message).toContain(
      "idleTimeout: is not an option of ConnectionPool (did you mean idleTimeoutMs?)",
    );
  });

  it("rejects a minimum above the maximum, but lets the tighter of two limits win otherwise", () => {
    expect(configError(() => resolvePoolConfig({ maxConnectionsPerKey: 2, minIdlePerKey: 3 })).field).toBe("minIdlePerKey");
    expect(resolvePoolConfig({ maxConnectionsPerKey: 1 }).maxConnectingPerKey).toBe(3);
    expect(resolvePoolConfig({ maxConnections: 2 }).maxConnectionsPerKey).toBe(4);
  });

  it("fails in the constructor, before any connect", () => {
    const transport = new FakeTransport();
    expect(configError(() => new ConnectionPool(transport, { maxChannelsPerConnection: 0 })).field).toBe("maxChannelsPerConnection");
    expect(configError(() => new ConnectionPool({} as never)).field).toBe("transport");
    expect(transport.calls).toHaveLength(0);
  });
});

describe("generateConnectionKey", () => {
  it("renders user@host:port", () => {
    expect(generateConnectionKey({ host: "web-1", user: "root", port: 22 })).toBe("root@web-1:22");
  });

  it("renders a missing user or port as empty, so they never share with explicit values", () => {
    expect(generateConnectionKey({ host: "web-1" })).toBe("@web-1:");
    expect(generateConnectionKey({ host: "web-1", user: "root" })).toBe("root@web-1:");
    expect(generateConnectionKey({ host: "web-1", port: 22 })).toBe("@web-1:22");
  });

  it("brackets IPv6 addresses and appends a digest of the transport identity, never the identity itself", () => {
    expect(generateConnectionKey({ host: "::1", user: "deploy", port: 2222 })).toBe("deploy@[::1]:2222");
    expect(generateConnectionKey({ host: "db", user: "ops", port: 22 }, "jump=bastion")).toBe("ops@db:22#cf8b6dac5304");
    expect(generateConnectionKey({ host: "db", user: "ops", port: 22 }, "")).toBe("ops@db:22");
    const identityFile = generateConnectionKey({ host: "db", user: "ops", port: 22 }, "i=/home/ops/.ssh/id_ed25519");
    expect(identityFile).toMatch(/^ops@db:22#[0-9a-f]{12}$/);
    expect(identityFile).not.toContain("/home/ops");
    expect(generateConnectionKey({ host: "db", user: "ops", port: 22 }, "i=/home/ops/.ssh/id_rsa")).not.toBe(identityFile);
  });

  it("is stable: the same target gives the same key", () => {
    expect(generateConnectionKey({ port: 22, user: "a", host: "h" })).toBe(generateConnectionKey({ host: "h", user: "a", port: 22 }));
  });
});
