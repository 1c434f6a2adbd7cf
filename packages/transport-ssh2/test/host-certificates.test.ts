// The transport is imported before anything else loads ssh2, as an application would: host certificates need it.
import { HOST_CERTIFICATE_KEY_ALGORITHMS, hostCertificateSupport, loadSsh2 } from "../src/ssh2-certificates.js";
import { Ssh2Transport, parseKnownHosts } from "../src/index.js";
import { verifyHostCertificate, type KnownHostsEntry } from "../src/known-hosts.js";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import type { ConnectConfig, ParsedKey } from "ssh2";
import { FakeClient } from "./fake-client.js";

const dir = mkdtempSync(join(tmpdir(), "tunnel-ssh2-host-cert-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function keygen(...args: string[]): void {
  execFileSync("ssh-keygen", ["-q", ...args], { stdio: "ignore" });
}

/** `<type> <base64>` of a public key or certificate file. */
function publicLine(path: string): string {
  return readFileSync(path, "utf8").trim().split(" ").slice(0, 2).join(" ");
}

function blobOf(line: string): Buffer {
  return Buffer.from(line.split(" ")[1] as string, "base64");
}

let names = 0;
/** A new CA (`ssh-keygen -t <type>`); returns its key path and public line. */
function authority(type: "ed25519" | "rsa" | "ecdsa" = "ed25519"): { path: string; line: string } {
  const path = join(dir, `ca-${++names}`);
  keygen("-t", type, ...(type === "rsa" ? ["-b", "2048"] : []), "-N", "", "-f", path);
  return { path, line: publicLine(`${path}.pub`) };
}

/** A new host key signed by `ca` with `sign` (ssh-keygen -s arguments); returns the certificate and host key. */
function hostCertificate(ca: { path: string }, sign: string[], type: "ed25519" | "rsa" = "ed25519"): { certificate: Buffer; key: string; keyPath: string } {
  const keyPath = join(dir, `host-${++names}`);
  keygen("-t", type, ...(type === "rsa" ? ["-b", "2048"] : []), "-N", "", "-f", keyPath);
  keygen("-s", ca.path, "-I", "web-1-host", ...sign, `${keyPath}.pub`);
  return { certificate: blobOf(publicLine(`${keyPath}-cert.pub`)), key: publicLine(`${keyPath}.pub`), keyPath };
}

const ca = authority();
const valid = hostCertificate(ca, ["-h", "-n", "web-1,web-1.example.com", "-V", "-5m:+1h"]);
const entriesFor = (...lines: string[]): KnownHostsEntry[] => parseKnownHosts(lines.join("\n"), "known_hosts");

describe("host certificates against @cert-authority lines", () => {
  it("trusts a host certificate the host's CA signed, naming the CA line", () => {
    const verdict = verifyHostCertificate(entriesFor(`@cert-authority web-* ${ca.line}`), "web-1", 22, valid.certificate);
    expect(verdict).toMatchObject({ status: "trusted", entry: { line: 1 }, certificate: { kind: "host", keyId: "web-1-host" } });
    expect(verifyHostCertificate(entriesFor(`@cert-authority [web-1]:2222 ${ca.line}`), "web-1", 2222, valid.certificate).status).toBe("trusted");
  });

  it("matches principals against the lowercased host name, and a certificate without principals is for any host (as OpenSSH)", () => {
    expect(verifyHostCertificate(entriesFor(`@cert-authority * ${ca.line}`), "WEB-1.example.com", 22, valid.certificate).status).toBe("trusted");
    const upper = hostCertificate(ca, ["-h", "-n", "WEB-1"]);
    expect(verifyHostCertificate(entriesFor(`@cert-authority * ${ca.line}`), "web-1", 22, upper.certificate).status).toBe("refused");
    const anyHost = hostCertificate(ca, ["-h", "-V", "-5m:+1h"]);
    expect(verifyHostCertificate(entriesFor(`@cert-authority * ${ca.line}`), "db-9", 22, anyHost.certificate).status).toBe("trusted");
  });

  it("verifies certificates signed by RSA (rsa-sha2-512) and ECDSA CAs, and RSA host certificates", () => {
    const rsa = authority("rsa");
    const rsaSigned = hostCertificate(rsa, ["-h", "-n", "web-1"], "rsa");
    expect(verifyHostCertificate(entriesFor(`@cert-authority * ${rsa.line}`), "web-1", 22, rsaSigned.certificate).status).toBe("trusted");
    const ecdsa = authority("ecdsa");
    const ecdsaSigned = hostCertificate(ecdsa, ["-h", "-n", "web-1"]);
    expect(verifyHostCertificate(entriesFor(`@cert-authority * ${ecdsa.line}`), "web-1", 22, ecdsaSigned.certificate).status).toBe("trusted");
  });

  it("refuses a certificate from another CA, or when no CA line names the host", () => {
    const other = authority();
    const otherCa = verifyHostCertificate(entriesFor(`@cert-authority * ${other.line}`), "web-1", 22, valid.certificate);
    expect(otherCa).toMatchObject({ status: "refused" });
    expect(otherCa.status === "refused" && otherCa.problem).toMatch(
      /not by a certificate authority known_hosts trusts for this host: SHA256:.* \(known_hosts:1\)/,
    );
    const elsewhere = verifyHostCertificate(entriesFor(`@cert-authority db-* ${ca.line}`), "web-1", 22, valid.certificate);
    expect(elsewhere.status === "refused" && elsewhere.problem).toMatch(/no @cert-authority line names this host/);
  });

  it("refuses an expired, a not yet valid and another host's certificate, saying which", () => {
    const entries = entriesFor(`@cert-authority * ${ca.line}`);
    const expired = hostCertificate(ca, ["-h", "-n", "web-1", "-V", "20200101:20200102"]);
    const problem = (verdict: ReturnType<typeof verifyHostCertificate>) => (verdict.status === "refused" ? verdict.problem : verdict.status);
    expect(problem(verifyHostCertificate(entries, "web-1", 22, expired.certificate))).toMatch(/expired at 2020-01-0/);
    expect(problem(verifyHostCertificate(entries, "web-1", 22, valid.certificate, new Date("2000-01-01T00:00:00Z")))).toMatch(/is not valid before/);
    expect(problem(verifyHostCertificate(entries, "db-1", 22, valid.certificate))).toMatch(
      /lists the principals "web-1", "web-1.example.com", not the host "db-1"/,
    );
  });

  it("refuses a user certificate, a forged signature, a truncated certificate and a SHA-1 (ssh-rsa) CA signature", () => {
    const entries = entriesFor(`@cert-authority * ${ca.line}`);
    const user = hostCertificate(ca, ["-n", "web-1"]);
    const problem = (verdict: ReturnType<typeof verifyHostCertificate>) => (verdict.status === "refused" ? verdict.problem : verdict.status);
    expect(problem(verifyHostCertificate(entries, "web-1", 22, user.certificate))).toMatch(/is a user certificate, not a host certificate/);
    const forged = Buffer.from(valid.certificate);
    forged[forged.length - 1] = (forged[forged.length - 1] as number) ^ 1;
    expect(problem(verifyHostCertificate(entries, "web-1", 22, forged))).toMatch(/signature that does not verify with the CA's key/);
    const truncated = valid.certificate.subarray(0, 60);
    expect(verifyHostCertificate(entries, "web-1", 22, truncated)).toMatchObject({
      status: "refused",
      certificate: undefined,
      problem: expect.stringMatching(/^host certificate that cannot be read/),
    });
    const rsa = authority("rsa");
    const sha1 = hostCertificate(rsa, ["-h", "-n", "web-1", "-t", "ssh-rsa"]);
    expect(problem(verifyHostCertificate(entriesFor(`@cert-authority * ${rsa.line}`), "web-1", 22, sha1.certificate))).toMatch(
      /signed with ssh-rsa by a ssh-rsa CA/,
    );
  });

  it("@revoked wins for the certificate, the key it certifies and the CA", () => {
    const certificateLine = publicLine(`${valid.keyPath}-cert.pub`);
    for (const revoked of [certificateLine, valid.key, ca.line]) {
      const verdict = verifyHostCertificate(entriesFor(`@cert-authority * ${ca.line}`, `@revoked * ${revoked}`), "web-1", 22, valid.certificate);
      expect(verdict).toMatchObject({ status: "revoked", entry: { line: 2 } });
    }
  });
});

describe("the ssh2 transport with host certificates", () => {
  const target = { host: "web-1", port: 22, user: "deploy" };

  async function connected(knownHosts: string) {
    const file = join(dir, `known_hosts_${++names}`);
    writeFileSync(file, knownHosts);
    const client = new FakeClient();
    await new Ssh2Transport({ configFile: false, agent: false, knownHostsFile: file, createClient: () => client.asClient() }).connect(target);
    const config = client.config as ConnectConfig;
    const verify = (key: Buffer): boolean => {
      let verdict: boolean | undefined;
      (config.hostVerifier as unknown as (key: Buffer, done: (valid: boolean) => void) => void)(key, (valid) => (verdict = valid));
      return verdict as boolean;
    };
    return { config, verify };
  }

  it("this process can verify host certificates: the transport prepared ssh2 before it loaded", () => {
    expect(hostCertificateSupport()).toEqual({ available: true });
  });

  it("offers the certificate host key algorithms first only when a @cert-authority line names the host", async () => {
    const withCa = await connected(`@cert-authority web-* ${ca.line}\nweb-1 ${valid.key}\n`);
    const offered = withCa.config.algorithms?.serverHostKey as string[];
    expect(offered.slice(0, HOST_CERTIFICATE_KEY_ALGORITHMS.length)).toEqual(HOST_CERTIFICATE_KEY_ALGORITHMS);
    expect(offered).toContain("ssh-ed25519");
    const withoutCa = await connected(`web-1 ${valid.key}\n@cert-authority db-* ${ca.line}\n`);
    // No list at all is ssh2's default offer, which holds no certificate algorithm (checked below).
    const withoutCaOffer = (withoutCa.config.algorithms?.serverHostKey as string[] | undefined) ?? [];
    expect(withoutCaOffer.some((name) => name.includes("-cert-"))).toBe(false);
    const none = await connected("");
    expect(none.config.algorithms?.serverHostKey).toBeUndefined();
  });

  it("the verifier trusts a certificate from the host's CA, and falls back to a listed plain key like OpenSSH", async () => {
    expect((await connected(`@cert-authority web-* ${ca.line}\n`)).verify(valid.certificate)).toBe(true);
    const other = authority();
    expect((await connected(`@cert-authority web-* ${other.line}\nweb-1 ${valid.key}\n`)).verify(valid.certificate)).toBe(true);
    expect((await connected(`@cert-authority web-* ${other.line}\n`)).verify(valid.certificate)).toBe(false);
    expect((await connected(`@cert-authority web-* ${ca.line}\n@revoked * ${ca.line}\nweb-1 ${valid.key}\n`)).verify(valid.certificate)).toBe(false);
  });
});

describe("the ssh2 patch for host certificates", () => {
  const require = createRequire(import.meta.url);

  it("makes the certificate algorithms negotiable without adding them to ssh2's defaults", () => {
    loadSsh2();
    const constants = require("ssh2/lib/protocol/constants.js") as { SUPPORTED_SERVER_HOST_KEY: string[]; DEFAULT_SERVER_HOST_KEY: string[] };
    expect(constants.SUPPORTED_SERVER_HOST_KEY).toEqual(expect.arrayContaining([...HOST_CERTIFICATE_KEY_ALGORITHMS]));
    expect(constants.DEFAULT_SERVER_HOST_KEY.some((name) => name.includes("-cert-"))).toBe(false);
  });

  it("parses a certificate host key as the key it certifies, which verifies the host's signatures", () => {
    const keyParser = require("ssh2/lib/protocol/keyParser.js") as { parseDERKey(data: Buffer, type: string): ParsedKey | Error };
    const type = "ssh-ed25519-cert-v01@openssh.com";
    const parsed = keyParser.parseDERKey(valid.certificate.subarray(4 + type.length), type);
    if (parsed instanceof Error) throw parsed;
    expect(parsed.getPublicSSH().equals(blobOf(valid.key))).toBe(true);
    const hostKey = loadSsh2().utils.parseKey(readFileSync(valid.keyPath)) as ParsedKey;
    const data = Buffer.from("exchange hash");
    expect(parsed.verify(data, hostKey.sign(data) as Buffer)).toBe(true);
    expect(keyParser.parseDERKey(Buffer.from("not a certificate"), type)).toBeInstanceOf(Error);
  });
});
