import { chmodSync, mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { PREFERRED_CIPHERS, cipherPreference } from "../src/cipher-preference.js";
import { masterArgs, resolveOptions } from "../src/options.js";

const preferred = ["-o", `Ciphers=${PREFERRED_CIPHERS}`];

function configFolder(files: Record<string, string>): string {
  const folder = mkdtempSync(join(tmpdir(), "tunnel-ciphers-"));
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(join(folder, name, ".."), { recursive: true });
    writeFileSync(join(folder, name), text);
  }
  return folder;
}

describe("the master's cipher preference", () => {
  it("is OpenSSH's default set reordered, AES-GCM first: nothing added, nothing dropped", () => {
    const defaults = "chacha20-poly1305@openssh.com,aes128-ctr,aes192-ctr,aes256-ctr,aes128-gcm@openssh.com,aes256-gcm@openssh.com";
    expect(PREFERRED_CIPHERS.split(",").sort()).toEqual(defaults.split(",").sort());
    expect(PREFERRED_CIPHERS.split(",")[0]).toBe("aes128-gcm@openssh.com");
  });

  it("is offered when no ssh_config is read and no Ciphers option is passed", () => {
    expect(masterArgs(resolveOptions({ configFile: false }), { host: "h" }, "/s").join(" ")).toContain(preferred.join(" "));
  });

  it("is left out when the transport's options set Ciphers: the user's list alone reaches ssh", () => {
    const args = masterArgs(resolveOptions({ configFile: false, options: { ciphers: "aes256-ctr" } }), { host: "h" }, "/s");
    expect(args).toContain("ciphers=aes256-ctr");
    expect(args.filter((arg) => /^ciphers=/i.test(arg))).toEqual(["ciphers=aes256-ctr"]);
  });

  it("is offered for a config file that sets other things only", () => {
    const folder = configFolder({ config: "Host web\n  HostName 10.0.0.1\n# Ciphers in a comment\n  MACs hmac-sha2-256\n" });
    expect(cipherPreference(join(folder, "config"), [])).toEqual(preferred);
  });

  it.each([
    ["a Ciphers line", (_folder: string) => "Host *\n  Ciphers aes256-ctr\n"],
    ["Ciphers=… in a Match block", (_folder: string) => "Match user deploy\n  ciphers=+aes128-cbc\n"],
    ["Ciphers in an included file", (folder: string) => `Include ${join(folder, "extra")}/*.conf\n`],
  ])("is left out when the config has %s", (_name, text) => {
    const folder = configFolder({ "extra/10-crypto.conf": "Ciphers aes256-gcm@openssh.com\n" });
    writeFileSync(join(folder, "config"), text(folder));
    expect(cipherPreference(join(folder, "config"), [])).toEqual([]);
  });

  it("follows includes that set nothing, and offers the preference", () => {
    const folder = configFolder({ "extra/a.conf": "ServerAliveInterval 5\n" });
    writeFileSync(join(folder, "config"), `Include "${join(folder, "extra")}/*.conf" ${join(folder, "missing.conf")}\n`);
    expect(cipherPreference(join(folder, "config"), [])).toEqual(preferred);
  });

  it("leaves ssh's default alone when a config cannot be read to the end", () => {
    const folder = configFolder({ config: `Include ${tmpdir()}/*/x/*.conf\n` });
    expect(cipherPreference(join(folder, "config"), [])).toEqual([]);
    if (process.getuid?.() !== 0) {
      const locked = configFolder({ config: "Host *\n" });
      chmodSync(join(locked, "config"), 0o000);
      expect(cipherPreference(join(locked, "config"), [])).toEqual([]);
    }
  });
});
