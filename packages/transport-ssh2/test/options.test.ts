import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { Ssh2Transport, type Ssh2TransportOptions } from "../src/index.js";
import { parseProxyJump } from "../src/options.js";
import { hostSettings, loadSshConfig } from "../src/ssh-config-resolver.js";
import { FakeClient } from "./fake-client.js";

describe("option validation happens in the constructor, before any I/O", () => {
  const bad: Array<[string, Ssh2TransportOptions]> = [
    ["hostKeyPolicy", { hostKeyPolicy: "trust-me" as never }],
    ["maxChannels", { maxChannels: 0 }],
    ["keepaliveInterval", { keepaliveInterval: -1 }],
    ["keepaliveCountMax", { keepaliveCountMax: 1.5 }],
    ["readyTimeout", { readyTimeout: 0 }],
    ["knownHosts", { knownHosts: [] }],
    ["sshConfig", { sshConfig: "" }],
    ["proxyJump", { proxyJump: "user@:22" }],
    ["proxyJump", { proxyJump: "jump:99999" }],
    ["transfer.concurrency", { transfer: { concurrency: 0 } }],
    ["transfer.chunkSize", { transfer: { chunkSize: 10 } }],
    ["privateKey", { privateKey: 42 as never }],
    ["createClient", { createClient: "nope" as never }],
  ];
  it.each(bad)("rejects a bad %s with ConfigError", (field, options) => {
    let created = 0;
    const attempt = () => new Ssh2Transport({ ...options, ...(options.createClient ? {} : { createClient: () => (created++, new FakeClient().asClient()) }) });
    expect(attempt).toThrow(expect.objectContaining({ code: "CONFIG", field, retryable: false }));
    expect(created).toBe(0);
  });

  it("rejects an unreadable private key with ConfigError before connecting", async () => {
    let created = 0;
    const transport = new Ssh2Transport({
      privateKey: "/nonexistent/id_ed25519",
      sshConfig: false,
      createClient: () => (created++, new FakeClient().asClient()),
    });
    await expect(transport.connect({ host: "127.0.0.1", port: 1 })).rejects.toMatchObject({ code: "CONFIG", field: "privateKey" });
    expect(created).toBe(0);
  });

  it("rejects an invalid target with ValidationError", async () => {
    const transport = new Ssh2Transport({ sshConfig: false });
    await expect(transport.connect({ host: "" })).rejects.toMatchObject({ code: "VALIDATION", field: "host" });
    await expect(transport.connect({ host: "h", port: 70000 })).rejects.toMatchObject({ code: "VALIDATION", field: "port" });
  });
});

describe("ProxyJump syntax", () => {
  it("parses OpenSSH's -J list", () => {
    expect(parseProxyJump("alice@jump1:2222,jump2,[::1]:22")).toEqual([
      { host: "jump1", port: 2222, user: "alice" },
      { host: "jump2" },
      { host: "::1", port: 22 },
    ]);
    expect(parseProxyJump("none")).toEqual([]);
  });
});

describe("ssh_config", () => {
  const dir = mkdtempSync(join(tmpdir(), "tunnel-ssh2-config-"));
  const path = join(dir, "config");
  writeFileSync(
    path,
    [
      "Host web",
      "  HostName 127.0.0.1",
      "  Port 1",
      "  User configured",
      "  IdentityFile ~/.ssh/web_%h",
      "  IdentityFile /keys/second",
      "Host behind",
      "  HostName 127.0.0.1",
      "  ProxyJump hop@web:2200",
      "Host *",
      "  User fallback",
      "",
    ].join("\n"),
  );

  it("gives HostName, Port, User, IdentityFile and ProxyJump for an alias (first value wins)", () => {
    const settings = hostSettings(loadSshConfig(path, true), "web");
    expect(settings).toMatchObject({ hostName: "127.0.0.1", port: 1, user: "configured", identityFiles: ["~/.ssh/web_%h", "/keys/second"] });
    expect(hostSettings(loadSshConfig(path, true), "behind").proxyJump).toEqual([{ host: "web", port: 2200, user: "hop" }]);
  });

  it("a missing default config is empty, a missing explicit one is a ConfigError", () => {
    expect(loadSshConfig(join(dir, "absent"), false)).toBeUndefined();
    expect(() => loadSshConfig(join(dir, "absent"), true)).toThrow(expect.objectContaining({ code: "CONFIG", field: "sshConfig" }));
  });

  it("is honoured by connect, and explicit values win over it", async () => {
    const configured = new FakeClient();
    await new Ssh2Transport({ sshConfig: path, agent: false, hostKeyPolicy: "insecure-accept-any", createClient: () => configured.asClient() }).connect({ host: "web" });
    expect(configured.config).toMatchObject({ host: "127.0.0.1", port: 1, username: "configured" });

    const explicit = new FakeClient();
    const connection = await new Ssh2Transport({
      sshConfig: path,
      username: "option-user",
      agent: false,
      hostKeyPolicy: "insecure-accept-any",
      createClient: () => explicit.asClient(),
    }).connect({ host: "web", port: 2 });
    expect(explicit.config).toMatchObject({ host: "127.0.0.1", port: 2, username: "option-user" });
    expect(connection.target).toEqual({ host: "127.0.0.1", port: 2, user: "option-user" });
  });

  it("reports the jump chain as the connection identity", () => {
    const transport = new Ssh2Transport({ sshConfig: path });
    expect(transport.identity({ host: "behind" })).toBe("hop@127.0.0.1:2200");
    expect(transport.identity({ host: "web" })).toBe("");
  });
});
