import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import ssh2 from "ssh2";
import type { ParsedKey } from "ssh2";
import { parseSshCertificate, sshCertificateProblem, type SshCertificate } from "@tunnel-sh/core/internal";
import { certificateKey, installCertificateSupport, missingSsh2Internals } from "../src/ssh2-certificates.js";

const dir = mkdtempSync(join(tmpdir(), "tunnel-ssh2-cert-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function keygen(...args: string[]): void {
  execFileSync("ssh-keygen", ["-q", ...args], { stdio: "ignore" });
}

/** A key signed by a fresh CA with ssh-keygen; returns the parsed certificate and the private key. */
function issue(name: string, type: "ed25519" | "rsa", sign: string[]): { certificate: SshCertificate; key: ParsedKey; caPublic: string } {
  keygen("-t", "ed25519", "-N", "", "-f", join(dir, `${name}-ca`));
  keygen("-t", type, ...(type === "rsa" ? ["-b", "2048"] : []), "-N", "", "-f", join(dir, name));
  keygen("-s", join(dir, `${name}-ca`), "-I", `${name}-id`, ...sign, join(dir, `${name}.pub`));
  const certificate = parseSshCertificate(readFileSync(join(dir, `${name}-cert.pub`), "utf8"));
  if (certificate instanceof Error) throw certificate;
  const key = ssh2.utils.parseKey(readFileSync(join(dir, name))) as ParsedKey;
  return { certificate, key, caPublic: readFileSync(join(dir, `${name}-ca.pub`), "utf8") };
}

describe("the ssh2 internals the certificate patch relies on", () => {
  it("are all there in the installed ssh2 (an upgrade that changes them fails here)", () => {
    expect(missingSsh2Internals()).toBeUndefined();
  });

  it("installs once and only wraps authPK", () => {
    const require = createRequire(join(process.cwd(), "package.json"));
    const Protocol = require("ssh2/lib/protocol/Protocol.js") as { prototype: Record<string, unknown> };
    installCertificateSupport();
    const patched = Protocol.prototype["authPK"];
    installCertificateSupport();
    expect(Protocol.prototype["authPK"]).toBe(patched);
  });
});

describe("OpenSSH certificates", () => {
  it("parses an ed25519 user certificate: id, principals, validity, the certified key and the CA", () => {
    const { certificate, key, caPublic } = issue("alice", "ed25519", ["-n", "alice,deploy", "-V", "20200101:20300101"]);
    expect(certificate).toMatchObject({ type: "ssh-ed25519-cert-v01@openssh.com", kind: "user", keyId: "alice-id", principals: ["alice", "deploy"] });
    expect(certificate.validAfter).toBe(BigInt(new Date(2020, 0, 1).getTime() / 1000)); // ssh-keygen reads local time
    expect(certificate.publicKey.equals(key.getPublicSSH())).toBe(true);
    expect(certificate.signatureKey.toString("base64")).toBe(caPublic.split(" ")[1]);
  });

  it("tells an expired certificate, a not-yet-valid one and a wrong principal apart", () => {
    const { certificate } = issue("bob", "ed25519", ["-n", "bob", "-V", "20200101:20200102"]);
    expect(sshCertificateProblem(certificate, "bob")).toMatch(/expired at 2020-01-0/);
    expect(sshCertificateProblem(certificate, "bob", new Date("2019-06-01T00:00:00Z"))).toMatch(/not valid before/);
    expect(sshCertificateProblem(certificate, "carol", new Date("2020-01-01T12:00:00Z"))).toMatch(/for "bob", not the login user "carol"/);
    expect(sshCertificateProblem(certificate, "bob", new Date("2020-01-01T12:00:00Z"))).toBeUndefined();
  });

  it("an RSA certificate asks for rsa-sha2-512 and its key signs with SHA-512", () => {
    const { certificate, key } = issue("rsa", "rsa", ["-n", "rsa"]);
    const wrapped = certificateKey(key, certificate);
    expect(wrapped.type).toBe("rsa-sha2-512-cert-v01@openssh.com");
    expect(wrapped.getPublicSSH().equals(certificate.blob)).toBe(true);
    const data = Buffer.from("challenge");
    expect(Buffer.from(wrapped.sign(data) as Buffer).equals(Buffer.from(key.sign(data, "sha512") as Buffer))).toBe(true);
  });

  it("refuses text that is not a certificate", () => {
    expect(parseSshCertificate("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAICa6QN951YjE5ApEM6KMoDac021WVZAzVfxS4l7zKRxC")).toBeInstanceOf(Error);
    expect(parseSshCertificate("ssh-ed25519-cert-v01@openssh.com AAAA")).toBeInstanceOf(Error);
  });
});
