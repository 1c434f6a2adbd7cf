import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { SSH_TRANSPORT_OPTIONS, type ConfigError } from "@tunnel-sh/core";
import ssh2, { type ConnectConfig } from "ssh2";
import { SSH2_TRANSPORT_OPTIONS, Ssh2Transport, type Ssh2TransportOptions } from "../src/index.js";
import { hostSettings, loadSshConfig } from "../src/ssh-config-resolver.js";
import { FakeClient } from "./fake-client.js";

function configError(run: () => unknown): ConfigError {
  try {
    run();
  } catch (error) {
    expect(error).toMatchObject({ code: "CONFIG" });
    return error as ConfigError;
  }
  throw new Error("expected a ConfigError");
}

describe("option validation happens in the constructor, before any I/O", () => {
  const bad: Array<[string, Ssh2TransportOptions]> = [
    ["hostKeyChecking", { hostKeyChecking: "trust-me" as never }],
    ["maxChannels", { maxChannels: 0 }],
    ["keepaliveInterval", { keepaliveInterval: -1 }],
    ["keepaliveCountMax", { keepaliveCountMax: 1.5 }],
    ["readyTimeout", { readyTimeout: 0 }],
    ["connectTimeout", { connectTimeout: "10s" as never }],
    ["knownHostsFile", { knownHostsFile: [] }],
    ["knownHostsFile[0]", { knownHostsFile: [7 as never] }],
    ["knownHostsFile", { hostKeyChecking: "insecure-accept-any", knownHostsFile: "/k" }],
    ["identityFile", { identityFile: 42 as never }],
    ["identitiesOnly", { identitiesOnly: "yes" as never }],
    ["configFile", { configFile: "" }],
    ["configFile", { configFile: true as never }],
    ["agent", { agent: 3 as never }],
    ["user", { user: "-oProxyCommand=x" }],
    ["password", { password: 1234 as never }],
    ["proxyJump", { proxyJump: "user@:22" }],
    ["proxyJump", { proxyJump: "jump:99999" }],
    ["proxyJump[0].host", { proxyJump: [{ host: "" }] }],
    ["transfer.concurrency", { transfer: { concurrency: 0 } }],
    ["transfer.chunkSize", { transfer: { chunkSize: 10 } }],
    ["transfer.size", { transfer: { size: 4 } as never }],
    ["privateKey", { privateKey: 42 as never }],
    ["privateKey", { privateKey: "/etc/tunnel/id_ed25519" }],
    ["createClient", { createClient: "nope" as never }],
    ["killGraceMs", { killGraceMs: -1 }],
    ["killGraceMs", { killGraceMs: "2s" as never }],
    ["killGraceMs", { killGraceMs: Number.POSITIVE_INFINITY }],
  ];
  it.each(bad)("rejects a bad %s with ConfigError", (field, options) => {
    let created = 0;
    const attempt = () => new Ssh2Transport({ ...options, ...(options.createClient ? {} : { createClient: () => (created++, new FakeClient().asClient()) }) });
    expect(attempt).toThrow(expect.objectContaining({ code: "CONFIG", field, retryable: false }));
    expect(created).toBe(0);
  });

  it("says where a key in a file goes when privateKey is given a path", () => {
    expect(() => new Ssh2Transport({ privateKey: "/etc/tunnel/id_ed25519" })).toThrow(/identityFile/);
  });

  it.each([
    ["username", "user"],
    ["knownHosts", "knownHostsFile"],
    ["hostKeyPolicy", "hostKeyChecking"],
    ["sshConfig", "configFile"],
  ])("refuses the old name %s, naming the new one (%s)", (old, renamed) => {
    const error = configError(() => new Ssh2Transport({ [old]: "x" } as never));
    expect(error.field).toBe(old);
    expect(error.message).toBe(`${old}: is not an option of Ssh2Transport: it is now called ${renamed}`);
  });

  it("refuses an unknown option by name, with the closest known name", () => {
    const typo = configError(() => new Ssh2Transport({ knownHostFile: "/k" } as never));
    expect(typo.field).toBe("knownHostFile");
    expect(typo.message).toContain("is not an option of Ssh2Transport (did you mean knownHostsFile?)");
    // openssh's own options are not ssh2's
    expect(configError(() => new Ssh2Transport({ sshPath: "/usr/bin/ssh" } as never)).field).toBe("sshPath");
    expect(configError(() => new Ssh2Transport("/k" as never)).field).toBe("options");
  });

  it("lists exactly the shared options plus ssh2's own", () => {
    expect(SSH2_TRANSPORT_OPTIONS.slice(0, SSH_TRANSPORT_OPTIONS.length)).toEqual(SSH_TRANSPORT_OPTIONS);
    expect(SSH2_TRANSPORT_OPTIONS.slice(SSH_TRANSPORT_OPTIONS.length)).toEqual([
      "privateKey",
      "passphrase",
      "algorithms",
      "transfer",
      "killGraceMs",
      "createClient",
    ]);
  });

  it("rejects an unreadable identity file with ConfigError before connecting", async () => {
    let created = 0;
    const transport = new Ssh2Transport({
      identityFile: "/nonexistent/id_ed25519",
      configFile: false,
      createClient: () => (created++, new FakeClient().asClient()),
    });
    await expect(transport.connect({ host: "127.0.0.1", port: 1 })).rejects.toMatchObject({ code: "CONFIG", field: "identityFile" });
    expect(created).toBe(0);
  });

  it("rejects an unreadable or malformed certificateFile, and forwardAgent without an agent, before connecting", async () => {
    let created = 0;
    const createClient = () => (created++, new FakeClient().asClient());
    const unreadable = new Ssh2Transport({ certificateFile: "/nonexistent/id-cert.pub", configFile: false, agent: false, createClient });
    await expect(unreadable.connect({ host: "127.0.0.1", port: 1 })).rejects.toMatchObject({ code: "CONFIG", field: "certificateFile" });
    const malformed = new Ssh2Transport({
      certificateFile: new URL("../package.json", import.meta.url).pathname,
      configFile: false,
      agent: false,
      createClient,
    });
    await expect(malformed.connect({ host: "127.0.0.1", port: 1 })).rejects.toMatchObject({ code: "CONFIG", field: "certificateFile" });
    const saved = process.env["SSH_AUTH_SOCK"];
    delete process.env["SSH_AUTH_SOCK"];
    try {
      const noAgent = new Ssh2Transport({ forwardAgent: true, configFile: false, createClient });
      await expect(noAgent.connect({ host: "127.0.0.1", port: 1 })).rejects.toMatchObject({ code: "CONFIG", field: "forwardAgent" });
    } finally {
      if (saved !== undefined) process.env["SSH_AUTH_SOCK"] = saved;
    }
    expect(created).toBe(0);
  });

  it("rejects an invalid target with ValidationError", async () => {
    const transport = new Ssh2Transport({ configFile: false });
    await expect(transport.connect({ host: "" })).rejects.toMatchObject({ code: "VALIDATION", field: "host" });
    await expect(transport.connect({ host: "h", port: 70000 })).rejects.toMatchObject({ code: "VALIDATION", field: "port" });
  });
});

describe("the shared option names reach ssh2", () => {
  const dir = mkdtempSync(join(tmpdir(), "tunnel-ssh2-options-"));
  const keys = ssh2.utils.generateKeyPairSync("ed25519");
  const keyFile = join(dir, "id_ed25519");
  writeFileSync(keyFile, keys.private, { mode: 0o600 });
  const hostKey = ssh2.utils.generateKeyPairSync("ed25519");
  const hostKeyBlob = Buffer.from(hostKey.public.split(" ")[1] as string, "base64");
  const target = { host: "127.0.0.1", port: 1, user: "deploy" };

  async function connected(options: Ssh2TransportOptions) {
    const client = new FakeClient();
    const connection = await new Ssh2Transport({ configFile: false, createClient: () => client.asClient(), ...options }).connect(target);
    return { config: client.config as ConnectConfig, connection };
  }

  function methods(config: ConnectConfig): string[] {
    const handler = config.authHandler as unknown as (methodsLeft: null) => { type: string } | false;
    const offered: string[] = [];
    for (let attempt = handler(null); attempt !== false; attempt = handler(null)) offered.push(attempt.type);
    return offered;
  }

  function verify(config: ConnectConfig, key: Buffer): boolean {
    let verdict: boolean | undefined;
    (config.hostVerifier as unknown as (key: Buffer, done: (valid: boolean) => void) => void)(key, (valid) => (verdict = valid));
    return verdict as boolean;
  }

  it("identityFile: the file's key is offered, and the agent is left out (identitiesOnly defaults to true)", async () => {
    const { config } = await connected({ identityFile: keyFile, agent: "/run/agent.sock", hostKeyChecking: "insecure-accept-any" });
    expect(methods(config)).toEqual(["publickey"]);
    const withAgent = await connected({ identityFile: [keyFile], identitiesOnly: false, agent: "/run/agent.sock", hostKeyChecking: "insecure-accept-any" });
    expect(methods(withAgent.config)).toEqual(["agent", "publickey"]);
  });

  it("privateKey: a key held in memory is offered", async () => {
    const { config } = await connected({ privateKey: keys.private, agent: false, hostKeyChecking: "insecure-accept-any" });
    expect(methods(config)).toEqual(["publickey"]);
  });

  it("agent false and password: no agent, then keyboard-interactive and password", async () => {
    const { config } = await connected({ agent: false, password: "secret", hostKeyChecking: "insecure-accept-any" });
    expect(methods(config).filter((method) => method !== "publickey")).toEqual(["keyboard-interactive", "password"]);
  });

  it("knownHostsFile + hostKeyChecking strict: a listed key passes, an unlisted one is refused", async () => {
    const file = join(dir, "known_hosts_strict");
    writeFileSync(file, `[127.0.0.1]:1 ${hostKey.public}\n`);
    const { config } = await connected({ knownHostsFile: file, agent: false });
    expect(verify(config, hostKeyBlob)).toBe(true);
    const other = ssh2.utils.generateKeyPairSync("ed25519");
    const strict = await connected({ knownHostsFile: join(dir, "absent_known_hosts"), agent: false });
    expect(verify(strict.config, Buffer.from(other.public.split(" ")[1] as string, "base64"))).toBe(false);
  });

  it("a re-key must present the host key the handshake accepted, even one accept-new just recorded", async () => {
    const first = join(dir, "known_hosts_rekey");
    const { config } = await connected({ knownHostsFile: first, hostKeyChecking: "accept-new", agent: false });
    expect(verify(config, hostKeyBlob)).toBe(true);
    // ssh2 asks the same verifier at every re-key of the connection.
    expect(verify(config, hostKeyBlob)).toBe(true);
    const other = ssh2.utils.generateKeyPairSync("ed25519");
    expect(verify(config, Buffer.from(other.public.split(" ")[1] as string, "base64"))).toBe(false);
    expect(readFileSync(first, "utf8").trim().split("\n")).toHaveLength(1);
  });

  it("hostKeyChecking accept-new records an unknown host in the first knownHostsFile", async () => {
    const first = join(dir, "known_hosts_new");
    const { config } = await connected({ knownHostsFile: [first, join(dir, "known_hosts_other")], hostKeyChecking: "accept-new", agent: false });
    expect(verify(config, hostKeyBlob)).toBe(true);
    expect(readFileSync(first, "utf8")).toContain(`[127.0.0.1]:1 ssh-ed25519 ${hostKeyBlob.toString("base64")}`);
  });

  it("hostKeyChecking insecure-accept-any accepts any key", async () => {
    const { config } = await connected({ hostKeyChecking: "insecure-accept-any", agent: false });
    expect(verify(config, hostKeyBlob)).toBe(true);
  });

  it("keepaliveInterval, keepaliveCountMax, readyTimeout, maxChannels and user", async () => {
    const client = new FakeClient();
    const connection = await new Ssh2Transport({
      configFile: false,
      agent: false,
      hostKeyChecking: "insecure-accept-any",
      user: "option-user",
      keepaliveInterval: 1000,
      keepaliveCountMax: 7,
      readyTimeout: 5000,
      maxChannels: 4,
      createClient: () => client.asClient(),
    }).connect({ host: "127.0.0.1", port: 1 });
    expect(client.config).toMatchObject({ username: "option-user", keepaliveInterval: 1000, keepaliveCountMax: 7 });
    expect(client.config?.readyTimeout).toBeLessThanOrEqual(5000);
    expect(connection.maxChannels).toBe(4);
    expect(connection.target.user).toBe("option-user");
  });

  it("proxyJump: the jump chain is the connection identity; none connects directly", () => {
    expect(new Ssh2Transport({ configFile: false, proxyJump: "hop@jump:2200" }).identity({ host: "web" })).toBe("hop@jump:2200");
    expect(new Ssh2Transport({ configFile: false, proxyJump: "none" }).identity({ host: "web" })).toBe("");
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
    expect(() => loadSshConfig(join(dir, "absent"), true)).toThrow(expect.objectContaining({ code: "CONFIG", field: "configFile" }));
  });

  it("is honoured by connect, and explicit values win over it", async () => {
    const configured = new FakeClient();
    await new Ssh2Transport({ configFile: path, agent: false, hostKeyChecking: "insecure-accept-any", createClient: () => configured.asClient() }).connect({
      host: "web",
    });
    expect(configured.config).toMatchObject({ host: "127.0.0.1", port: 1, username: "configured" });

    const explicit = new FakeClient();
    const connection = await new Ssh2Transport({
      configFile: path,
      user: "option-user",
      agent: false,
      hostKeyChecking: "insecure-accept-any",
      createClient: () => explicit.asClient(),
    }).connect({ host: "web", port: 2 });
    expect(explicit.config).toMatchObject({ host: "127.0.0.1", port: 2, username: "option-user" });
    expect(connection.target).toEqual({ host: "127.0.0.1", port: 2, user: "option-user" });
  });

  it("reports the jump chain as the connection identity", () => {
    const transport = new Ssh2Transport({ configFile: path });
    expect(transport.identity({ host: "behind" })).toBe("hop@127.0.0.1:2200");
    expect(transport.identity({ host: "web" })).toBe("");
  });
});
