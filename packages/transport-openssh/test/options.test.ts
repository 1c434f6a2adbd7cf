import { existsSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { SSH_TRANSPORT_OPTIONS, hasCode, type Target } from "@tunnel-sh/core";
import { validateTarget } from "@tunnel-sh/core/internal";
import { OPENSSH_TRANSPORT_OPTIONS, OpenSshTransport, type OpenSshTransportOptions } from "../src/index.js";
import { clientArgs, masterArgs, resolveOptions, signalName } from "../src/options.js";

function configError(run: () => unknown): { field: string } {
  try {
    run();
  } catch (error) {
    expect(hasCode(error, "CONFIG")).toBe(true);
    return error as { field: string };
  }
  throw new Error("expected a ConfigError");
}

describe("OpenSshTransport options", () => {
  it("exact exit status is the default; false is the explicit opt-out", () => {
    expect(resolveOptions().exactExitStatus).toBe(true);
    expect(resolveOptions({ exactExitStatus: false }).exactExitStatus).toBe(false);
  });

  it("defaults: strict host keys, batch mode, keepalive 15 s x 3, connect timeout 10 s", () => {
    const args = masterArgs(resolveOptions(), { host: "h" }, "/tmp/x/s").join(" ");
    expect(args).toContain("-M -N -S /tmp/x/s -o ControlPersist=no");
    expect(args).toContain("StrictHostKeyChecking=yes");
    expect(args).toContain("BatchMode=yes");
    expect(args).toContain("ServerAliveInterval=15");
    expect(args).toContain("ServerAliveCountMax=3");
    expect(args).toContain("ConnectTimeout=10");
  });

  it("accept-new and the explicit insecure opt-out", () => {
    expect(masterArgs(resolveOptions({ hostKeyChecking: "accept-new" }), { host: "h" }, "/s")).toContain("StrictHostKeyChecking=accept-new");
    const insecure = masterArgs(resolveOptions({ hostKeyChecking: "insecure-accept-any" }), { host: "h" }, "/s");
    expect(insecure).toContain("StrictHostKeyChecking=no");
    expect(insecure).toContain("UserKnownHostsFile=/dev/null");
  });

  it("clients never bypass the master: ControlMaster=no and ProxyCommand=/bin/false", () => {
    const args = clientArgs(resolveOptions(), { host: "h", port: 2222, user: "u" }, "/tmp/a%b/s");
    expect(args).toEqual(expect.arrayContaining(["ControlMaster=no", "ProxyCommand=/bin/false", "BatchMode=yes", "-p", "2222", "-l", "u"]));
    expect(args).toContain("/tmp/a%%b/s");
  });

  it("a password turns batch mode off for the master only (askpass answers), never putting it in argv", () => {
    const options = resolveOptions({ password: "s3cret pass" });
    const args = masterArgs(options, { host: "h" }, "/s");
    expect(args).toContain("BatchMode=no");
    expect(args.join(" ")).not.toContain("s3cret");
  });

  it("extra -o options pass through when safe", () => {
    const args = masterArgs(resolveOptions({ options: { Compression: true, HostKeyAlias: "web", Ciphers: "aes128-gcm@openssh.com" } }), { host: "h" }, "/s");
    expect(args).toEqual(expect.arrayContaining(["Compression=yes", "HostKeyAlias=web", "Ciphers=aes128-gcm@openssh.com"]));
  });

  it.each([
    "CertificateFile",
    "ForwardAgent",
    "KbdInteractiveAuthentication",
    "ControlPath",
    "controlmaster",
    "ControlPersist",
    "BatchMode",
    "StrictHostKeyChecking",
    "ProxyCommand",
    "LocalCommand",
    "PermitLocalCommand",
    "LogLevel",
    "RemoteCommand",
    "ProxyJump",
    "IdentityAgent",
    "User",
  ])("refuses the option %s before any I/O", (key) => {
    expect(configError(() => new OpenSshTransport({ options: { [key]: "x" } })).field).toBe(`options.${key}`);
  });

  it.each(["a b", "x#y", "$(id)", "'q'", "a\nb", "back\\slash", ""])("refuses the option value %j", (value) => {
    configError(() => new OpenSshTransport({ options: { Compression: value } }));
  });

  it("refuses malformed keys, numbers and paths", () => {
    expect(configError(() => new OpenSshTransport({ options: { "Bad-Key": "x" } })).field).toBe("options.Bad-Key");
    expect(configError(() => new OpenSshTransport({ maxChannels: 0 })).field).toBe("maxChannels");
    expect(configError(() => new OpenSshTransport({ connectTimeout: -1 })).field).toBe("connectTimeout");
    expect(configError(() => new OpenSshTransport({ keepaliveCountMax: 1.5 })).field).toBe("keepaliveCountMax");
    expect(configError(() => new OpenSshTransport({ sshPath: "" })).field).toBe("sshPath");
    expect(configError(() => new OpenSshTransport({ password: "a\nb" })).field).toBe("password");
    expect(configError(() => new OpenSshTransport({ hostKeyChecking: "no" as never })).field).toBe("hostKeyChecking");
    expect(configError(() => new OpenSshTransport({ exactExitStatus: "yes" as never })).field).toBe("exactExitStatus");
    expect(configError(() => new OpenSshTransport({ hostKeyChecking: "insecure-accept-any", knownHostsFile: "/k" })).field).toBe("knownHostsFile");
  });

  it("validates targets so ssh never reads a host or user as an option", async () => {
    expect(() => validateTarget({ host: "-oProxyCommand=x" })).toThrow(/host/);
    expect(() => validateTarget({ host: "h", user: "-l" })).toThrow(/user/);
    expect(() => validateTarget({ host: "h", port: 70000 })).toThrow(/port/);
    await expect(new OpenSshTransport().connect({ host: "-oProxyCommand=touch /tmp/x" })).rejects.toMatchObject({ code: "VALIDATION" });
  });

  it("signal names are normalised and validated", () => {
    expect(signalName("SIGTERM")).toBe("TERM");
    expect(signalName("kill")).toBe("KILL");
    expect(() => signalName("TERM; rm -rf /")).toThrow();
  });

  it("identity separates connections with different identities in a pool", () => {
    expect(new OpenSshTransport().identity({ host: "h" })).toBe("");
    expect(new OpenSshTransport({ identityFile: "/k", proxyJump: "j" }).identity({ host: "h" })).toBe("i=/k;J=j");
    expect(new OpenSshTransport({ options: { HostKeyAlias: "web" } }).identity({ host: "h" })).toBe("HostKeyAlias=web");
  });
});

describe("the shared option names become the ssh settings they are named after", () => {
  const master = (options: OpenSshTransportOptions, target: Target = { host: "h" }) => masterArgs(resolveOptions(options), target, "/s");
  const pair = (args: readonly string[], flag: string) => args[args.indexOf(flag) + 1];

  it("identityFile and identitiesOnly", () => {
    const args = master({ identityFile: ["/k1", "/k2"] });
    expect(args.join(" ")).toContain("-i /k1 -i /k2 -o IdentitiesOnly=yes");
    expect(master({ identityFile: "/k", identitiesOnly: false })).not.toContain("IdentitiesOnly=yes");
    expect(master({})).not.toContain("IdentitiesOnly=yes");
  });

  it("certificateFile, forwardAgent and onKeyboardInteractive", () => {
    expect(master({ certificateFile: ["/c1-cert.pub", "/c%2-cert.pub"] }).join(" ")).toContain(
      "-o CertificateFile=/c1-cert.pub -o CertificateFile=/c%%2-cert.pub",
    );
    expect(master({ forwardAgent: true, agent: "/run/agent.sock" })).toContain("ForwardAgent=/run/agent.sock");
    expect(master({ forwardAgent: true })).toContain("ForwardAgent=yes");
    expect(master({ forwardAgent: false })).toContain("ForwardAgent=no");
    expect(master({}).join(" ")).not.toContain("ForwardAgent");
    // The mux client must ask for forwarding too, or the master forwards nothing for that session.
    expect(clientArgs(resolveOptions({ forwardAgent: true }), { host: "h" }, "/s")).toContain("ForwardAgent=yes");
    expect(clientArgs(resolveOptions({}), { host: "h" }, "/s").join(" ")).not.toContain("ForwardAgent");
    const asking = master({ onKeyboardInteractive: () => ["123456"] });
    expect(asking).toContain("BatchMode=no");
    expect(asking).toContain("KbdInteractiveAuthentication=yes");
    expect(() => resolveOptions({ certificateFile: "/with space-cert.pub" })).toThrow(/whitespace/);
  });

  it("knownHostsFile and hostKeyChecking", () => {
    expect(master({ knownHostsFile: ["/a", "/b"] })).toContain("UserKnownHostsFile=/a /b");
    expect(master({ hostKeyChecking: "accept-new" })).toContain("StrictHostKeyChecking=accept-new");
  });

  it("configFile: a path is -F; false reads no ssh_config (-F /dev/null), for the master and every client", () => {
    expect(pair(master({ configFile: "/etc/tunnel/ssh_config" }), "-F")).toBe("/etc/tunnel/ssh_config");
    expect(pair(master({ configFile: false }), "-F")).toBe("/dev/null");
    expect(pair(clientArgs(resolveOptions({ configFile: false }), { host: "h" }, "/s"), "-F")).toBe("/dev/null");
    expect(master({})).not.toContain("-F");
  });

  it("user is the login user when the target names none", () => {
    expect(pair(master({ user: "deploy" }), "-l")).toBe("deploy");
    expect(pair(master({ user: "deploy" }, { host: "h", user: "root" }), "-l")).toBe("root");
    expect(pair(clientArgs(resolveOptions({ user: "deploy" }), { host: "h" }, "/s"), "-l")).toBe("deploy");
  });

  it("agent: a socket is IdentityAgent, false is IdentityAgent=none, unset leaves SSH_AUTH_SOCK to ssh", () => {
    expect(master({ agent: "/run/agent%1.sock" })).toContain("IdentityAgent=/run/agent%%1.sock");
    expect(master({ agent: false })).toContain("IdentityAgent=none");
    expect(master({}).join(" ")).not.toContain("IdentityAgent");
  });

  it("proxyJump: each jump host is an ssh -W with the transport's own settings, nested first hop innermost", () => {
    const options = { proxyJump: "alice@jump1:2222,jump2", identityFile: "/keys/id%1", knownHostsFile: "/kh", user: "deploy", sshPath: "/opt/ssh" };
    const args = master(options);
    const command = (args.find((arg) => arg.startsWith("ProxyCommand=")) ?? "").slice("ProxyCommand=".length);
    // The outer command reaches jump2 (as the default user) and forwards to the destination: %h and %p are the master's.
    expect(command.startsWith("/opt/ssh -l deploy ")).toBe(true);
    expect(command.endsWith(" -W '[%h]:%p' -- jump2")).toBe(true);
    expect(command).toContain("-o StrictHostKeyChecking=yes -o UserKnownHostsFile=/kh -i /keys/id%%1 -o IdentitiesOnly=yes");
    expect(command).toContain("-o BatchMode=yes");
    // jump2 itself is reached through jump1; that command's tokens are escaped once more for the outer level.
    expect(command).toContain("'ProxyCommand=/opt/ssh -p 2222 -l alice ");
    expect(command).toContain("-i /keys/id%%%%1");
    expect(command).toContain(" -W '\\''[%%h]:%%p'\\'' -- jump1'");
    expect(master({ proxyJump: "none" })).toContain("ProxyJump=none");
    expect(master({}).join(" ")).not.toMatch(/ProxyJump|ProxyCommand/);
  });

  it("connectTimeout, keepaliveInterval and keepaliveCountMax, rounded up to seconds", () => {
    const args = master({ connectTimeout: 1500, keepaliveInterval: 2500, keepaliveCountMax: 5 });
    expect(args).toEqual(expect.arrayContaining(["ConnectTimeout=2", "ServerAliveInterval=3", "ServerAliveCountMax=5"]));
    expect(master({ keepaliveInterval: 0 })).toContain("ServerAliveInterval=0");
  });

  it("readyTimeout defaults to connectTimeout + 20 s; maxChannels to 10", () => {
    expect(resolveOptions({ connectTimeout: 4000 }).readyTimeout).toBe(24_000);
    expect(resolveOptions({ readyTimeout: 7000 }).readyTimeout).toBe(7000);
    expect(resolveOptions().maxChannels).toBe(10);
  });
});

describe("unknown and renamed options", () => {
  it.each([
    ["privateKey", "identityFile"],
    ["username", "user"],
    ["knownHosts", "knownHostsFile"],
    ["hostKeyPolicy", "hostKeyChecking"],
    ["sshConfig", "configFile"],
  ])("refuses the old name %s, naming the new one (%s)", (old, renamed) => {
    const error = configError(() => new OpenSshTransport({ [old]: "x" } as never)) as unknown as Error & { field: string };
    expect(error.field).toBe(old);
    expect(error.message).toBe(`${old}: is not an option of OpenSshTransport: it is now called ${renamed}`);
  });

  it("refuses a typo and ssh2's own options by name", () => {
    const typo = configError(() => new OpenSshTransport({ identityFiles: ["/k"] } as never)) as unknown as Error & { field: string };
    expect(typo.field).toBe("identityFiles");
    expect(typo.message).toContain("(did you mean identityFile?)");
    for (const key of ["createClient", "passphrase", "algorithms", "transfer"]) {
      expect(configError(() => new OpenSshTransport({ [key]: undefined } as never)).field).toBe(key);
    }
  });

  it("refuses wrong types with what was given", () => {
    expect(configError(() => new OpenSshTransport({ identityFile: 42 as never })).field).toBe("identityFile");
    expect(configError(() => new OpenSshTransport({ configFile: true as never })).field).toBe("configFile");
    expect(configError(() => new OpenSshTransport({ options: "Compression=yes" as never })).field).toBe("options");
    expect(configError(() => new OpenSshTransport({ options: { Compression: {} as never } })).field).toBe("options.Compression");
    expect(configError(() => new OpenSshTransport({ env: [] as never })).field).toBe("env");
    expect(configError(() => new OpenSshTransport({ agent: "/run/my agent" })).field).toBe("agent");
  });

  it("an unreadable identityFile is a ConfigError at connect, before ssh starts", async () => {
    const marker = join(mkdtempSync(join(tmpdir(), "tunnel-openssh-options-")), "started");
    const sshPath = join(marker, "..", "ssh");
    writeFileSync(sshPath, `#!/bin/sh\ntouch ${marker}\n`, { mode: 0o700 });
    const transport = new OpenSshTransport({ identityFile: "/nonexistent/id_ed25519", sshPath, configFile: false });
    await expect(transport.connect({ host: "127.0.0.1", port: 1 })).rejects.toMatchObject({ code: "CONFIG", field: "identityFile" });
    expect(existsSync(marker)).toBe(false);
  });

  it("lists exactly the shared options plus the OpenSSH transport's own", () => {
    expect(OPENSSH_TRANSPORT_OPTIONS.slice(0, SSH_TRANSPORT_OPTIONS.length)).toEqual(SSH_TRANSPORT_OPTIONS);
    expect(OPENSSH_TRANSPORT_OPTIONS.slice(SSH_TRANSPORT_OPTIONS.length)).toEqual(["sshPath", "killGraceMs", "exactExitStatus", "options", "tempDir", "env"]);
  });
});
