import { createHmac, randomBytes } from "node:crypto";
import { appendFile, mkdtemp, rename, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ConfigError } from "@tunnel-sh/core";
import { KnownHostsCache } from "../src/host-key-verification.js";
import { resolveOptions } from "../src/options.js";
import { fingerprint, hostFieldMatches, knownHostsName, parseKnownHosts, verifyHostKey } from "../src/known-hosts.js";

const KEY_A = "AAAAC3NzaC1lZDI1NTE5AAAAIHgaOb+auZutE/V24uV2AHLy2Rmmq3SOHwk+k/25Rsfs";
const KEY_B = "AAAAC3NzaC1lZDI1NTE5AAAAICa6QN951YjE5ApEM6KMoDac021WVZAzVfxS4l7zKRxC";
const keyA = Buffer.from(KEY_A, "base64");
/** Written by `ssh-keygen -H` for `[127.0.0.1]:2222 ssh-ed25519 KEY_A`. */
const HASHED_BY_SSH_KEYGEN = `|1|GoYUKcOEUj9j35LQhLS058uPzPs=|T1hwQavQODW8QpMqXjI8b4hWH0A= ssh-ed25519 ${KEY_A}`;

describe("known_hosts parsing", () => {
  it("skips comments, blank lines, unknown markers and lines whose key does not match its type", () => {
    const entries = parseKnownHosts(
      [
        "# comment",
        "",
        `web-1 ssh-ed25519 ${KEY_A}`,
        `@weird web-2 ssh-ed25519 ${KEY_A}`,
        `web-3 ssh-rsa ${KEY_A}`,
        "web-4 ssh-ed25519",
        `@revoked * ssh-ed25519 ${KEY_B}`,
        `@cert-authority *.example ssh-ed25519 ${KEY_B}`,
      ].join("\n"),
      "kh",
    );
    expect(entries.map((entry) => [entry.marker, entry.hosts, entry.line])).toEqual([
      [undefined, "web-1", 3],
      ["revoked", "*", 7],
      ["cert-authority", "*.example", 8],
    ]);
  });

  it("names non-default ports in the [host]:port form", () => {
    expect(knownHostsName("web-1", 22)).toBe("web-1");
    expect(knownHostsName("127.0.0.1", 2222)).toBe("[127.0.0.1]:2222");
  });

  it("prints fingerprints the way ssh-keygen -l does", () => {
    expect(fingerprint(keyA)).toMatch(/^SHA256:[A-Za-z0-9+/]{43}$/);
  });
});

describe("host matching", () => {
  it("matches a hashed entry written by ssh-keygen -H, and only for that host and port", () => {
    const [entry] = parseKnownHosts(HASHED_BY_SSH_KEYGEN);
    expect(hostFieldMatches(entry!.hosts, "[127.0.0.1]:2222")).toBe(true);
    expect(hostFieldMatches(entry!.hosts, "[127.0.0.1]:2223")).toBe(false);
    expect(hostFieldMatches(entry!.hosts, "127.0.0.1")).toBe(false);
  });

  it("matches a hashed entry computed as HMAC-SHA1 of the name keyed by the salt", () => {
    const salt = randomBytes(20);
    const hash = createHmac("sha1", salt).update("db-1.internal").digest();
    const field = `|1|${salt.toString("base64")}|${hash.toString("base64")}`;
    expect(hostFieldMatches(field, "db-1.internal")).toBe(true);
    expect(hostFieldMatches(field, "db-2.internal")).toBe(false);
  });

  it("supports comma lists, wildcards and negation", () => {
    expect(hostFieldMatches("web-1,web-2", "web-2")).toBe(true);
    expect(hostFieldMatches("*.example.com", "a.example.com")).toBe(true);
    expect(hostFieldMatches("web-?", "web-7")).toBe(true);
    expect(hostFieldMatches("*.example.com,!secret.example.com", "secret.example.com")).toBe(false);
    expect(hostFieldMatches("[10.0.0.*]:2222", "[10.0.0.5]:2222")).toBe(true);
    expect(hostFieldMatches("web-1", "web-10")).toBe(false);
  });
});

describe("host key verdicts", () => {
  it("trusts a listed key among several keys for the host", () => {
    const entries = parseKnownHosts(`[h]:2222 ssh-ed25519 ${KEY_B}\n[h]:2222 ssh-ed25519 ${KEY_A}`);
    expect(verifyHostKey(entries, "h", 2222, keyA).status).toBe("trusted");
  });

  it("trusts a key found through a hashed entry", () => {
    expect(verifyHostKey(parseKnownHosts(HASHED_BY_SSH_KEYGEN), "127.0.0.1", 2222, keyA).status).toBe("trusted");
  });

  it("reports a changed key when the host is listed with other keys", () => {
    const verdict = verifyHostKey(parseKnownHosts(`[h]:2222 ssh-ed25519 ${KEY_B}`, "kh"), "h", 2222, keyA);
    expect(verdict).toMatchObject({ status: "changed", entries: [{ file: "kh", line: 1 }] });
  });

  it("reports an unknown host when nothing is listed for it (other ports do not count)", () => {
    expect(verifyHostKey(parseKnownHosts(`h ssh-ed25519 ${KEY_A}`), "h", 2222, keyA).status).toBe("unknown");
  });

  it("refuses a revoked key even when it is also listed as trusted", () => {
    const entries = parseKnownHosts(`h ssh-ed25519 ${KEY_A}\n@revoked * ssh-ed25519 ${KEY_A}`);
    expect(verifyHostKey(entries, "h", 22, keyA).status).toBe("revoked");
  });

  it("a @cert-authority line does not trust a plain key, only the certificates its CA signs", () => {
    const entries = parseKnownHosts(`@cert-authority h ssh-ed25519 ${KEY_A}`);
    expect(verifyHostKey(entries, "h", 22, keyA).status).toBe("unknown");
  });
});

describe("known_hosts shared by a transport's connects (KnownHostsCache)", () => {
  const setup = async () => {
    const folder = await mkdtemp(join(tmpdir(), "tunnel-known-hosts-cache-"));
    const file = join(folder, "known_hosts");
    const options = resolveOptions({ knownHostsFile: file });
    return { folder, file, options, cache: new KnownHostsCache() };
  };

  it("parses a file once and hands the same entries to every connect, each in an array of its own", async () => {
    const { folder, file, options, cache } = await setup();
    try {
      await writeFile(file, `web-1 ssh-ed25519 ${KEY_A}\n`);
      const first = cache.read(options);
      const second = cache.read(options);
      expect(first.map((entry) => entry.hosts)).toEqual(["web-1"]);
      expect(second[0]).toBe(first[0]);
      // A connect that records a new key adds to its own array, not to the next connect's.
      first.push(...parseKnownHosts(`web-2 ssh-ed25519 ${KEY_B}`, file));
      expect(cache.read(options).map((entry) => entry.hosts)).toEqual(["web-1"]);
    } finally {
      await rm(folder, { recursive: true, force: true });
    }
  });

  it("reads a file again once it changed: a line appended, the file replaced, the file removed", async () => {
    const { folder, file, options, cache } = await setup();
    try {
      await writeFile(file, `web-1 ssh-ed25519 ${KEY_A}\n`);
      expect(cache.read(options).map((entry) => entry.hosts)).toEqual(["web-1"]);
      await appendFile(file, `web-2 ssh-ed25519 ${KEY_B}\n`);
      expect(cache.read(options).map((entry) => entry.hosts)).toEqual(["web-1", "web-2"]);
      const replacement = join(folder, "replacement");
      await writeFile(replacement, `web-3 ssh-ed25519 ${KEY_B}\n`);
      await rename(replacement, file);
      expect(cache.read(options).map((entry) => entry.hosts)).toEqual(["web-3"]);
      await rm(file);
      expect(cache.read(options)).toEqual([]);
      await writeFile(file, `web-4 ssh-ed25519 ${KEY_A}\n`);
      expect(cache.read(options).map((entry) => entry.hosts)).toEqual(["web-4"]);
    } finally {
      await rm(folder, { recursive: true, force: true });
    }
  });

  it("a path that cannot be read is a ConfigError naming it", async () => {
    const { folder, cache } = await setup();
    try {
      const options = resolveOptions({ knownHostsFile: folder });
      expect(() => cache.read(options)).toThrow(ConfigError);
      expect(() => cache.read(options)).toThrow(folder);
    } finally {
      await rm(folder, { recursive: true, force: true });
    }
  });
});
