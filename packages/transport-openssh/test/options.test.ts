import { describe, expect, it } from "vitest";
import { hasCode } from "@tunnel-sh/core";
import { OpenSshTransport } from "../src/index.js";
import { clientArgs, masterArgs, resolveOptions, signalName, validateTarget } from "../src/options.js";

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
    const args = masterArgs(resolveOptions({ options: { Compression: true, ProxyJump: "jump@bastion:2222", Ciphers: "aes128-gcm@openssh.com" } }), { host: "h" }, "/s");
    expect(args).toEqual(expect.arrayContaining(["Compression=yes", "ProxyJump=jump@bastion:2222", "Ciphers=aes128-gcm@openssh.com"]));
  });

  it.each(["ControlPath", "controlmaster", "ControlPersist", "BatchMode", "StrictHostKeyChecking", "ProxyCommand", "LocalCommand", "PermitLocalCommand", "LogLevel", "RemoteCommand"])(
    "refuses the option %s before any I/O",
    (key) => {
      expect(configError(() => new OpenSshTransport({ options: { [key]: "x" } })).field).toBe(`options.${key}`);
    },
  );

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
    expect(new OpenSshTransport({ identityFile: "/k", options: { ProxyJump: "j" } }).identity({ host: "h" })).toBe("i=/k;ProxyJump=j");
  });
});
