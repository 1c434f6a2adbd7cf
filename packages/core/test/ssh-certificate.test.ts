import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CERTIFIED_KEY_TYPES, SshReader, parseSshCertificate, parseSshCertificateBlob, sshCertificateProblem, sshString } from "../src/ssh-certificate.js";

// Real certificates from ssh-keygen, so the parser is checked against what OpenSSH writes, not against itself.
let dir: string;

function keygen(args: string[]): void {
  execFileSync("ssh-keygen", ["-q", ...args], { stdio: ["ignore", "ignore", "pipe"], env: { PATH: process.env.PATH ?? "/usr/bin:/bin", TZ: "UTC" } });
}

function sign(type: "ed25519" | "rsa" | "ecdsa", name: string, extra: string[]): string {
  const key = join(dir, name);
  keygen(["-t", type, "-N", "", "-C", name, "-f", key]);
  keygen(["-s", join(dir, "ca"), "-I", `id-${name}`, ...extra, `${key}.pub`]);
  return readFileSync(`${key}-cert.pub`, "utf8");
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "tunnel-core-cert-"));
  keygen(["-t", "ed25519", "-N", "", "-C", "ca", "-f", join(dir, "ca")]);
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe("parseSshCertificate", () => {
  it.each(["ed25519", "rsa", "ecdsa"] as const)("reads an %s user certificate: type, key id, principals, validity, the certified key", (type) => {
    const text = sign(type, `user-${type}`, ["-n", "deploy,ops", "-V", "20200101:20991231"]);
    const certificate = parseSshCertificate(text);
    if (certificate instanceof Error) throw certificate;
    expect(certificate.type).toBe(text.split(" ")[0]);
    expect(CERTIFIED_KEY_TYPES[certificate.type]).toBeDefined();
    expect(certificate.kind).toBe("user");
    expect(certificate.keyId).toBe(`id-user-${type}`);
    expect(certificate.principals).toEqual(["deploy", "ops"]);
    expect(certificate.validAfter).toBe(BigInt(Date.UTC(2020, 0, 1) / 1000));
    expect(certificate.validBefore).toBe(BigInt(Date.UTC(2099, 11, 31) / 1000));
    // The certified key is the plain public key ssh-keygen wrote beside the certificate.
    const plain = readFileSync(join(dir, `user-${type}.pub`), "utf8").split(" ")[1] as string;
    expect(certificate.publicKey.toString("base64")).toBe(plain);
    const caBlob = readFileSync(join(dir, "ca.pub"), "utf8").split(" ")[1] as string;
    expect(certificate.signatureKey.toString("base64")).toBe(caBlob);
    expect(certificate.blob.subarray(0, certificate.signedData.length).equals(certificate.signedData)).toBe(true);
    expect(certificate.signature.length).toBeGreaterThan(0);
  });

  it("reads a host certificate as kind host", () => {
    const certificate = parseSshCertificate(sign("ed25519", "host", ["-h", "-n", "web-1"]));
    if (certificate instanceof Error) throw certificate;
    expect(certificate.kind).toBe("host");
    expect(certificate.validBefore).toBe(0xffff_ffff_ffff_ffffn);
  });

  it("refuses text that is not a certificate, a type that does not match its blob, and a truncated blob", () => {
    expect(parseSshCertificate("ssh-ed25519 AAAA comment")).toBeInstanceOf(Error);
    expect(parseSshCertificate("")).toBeInstanceOf(Error);
    const text = sign("ed25519", "mismatch", ["-n", "deploy"]);
    const [, data] = text.split(" ");
    expect(parseSshCertificate(`ssh-rsa-cert-v01@openssh.com ${data}`)).toBeInstanceOf(Error);
    const blob = Buffer.from(data as string, "base64");
    const truncated = parseSshCertificateBlob(blob.subarray(0, blob.length - 10));
    expect(truncated).toBeInstanceOf(Error);
    expect((truncated as Error).message).toContain("truncated");
    expect(parseSshCertificateBlob(sshString("ssh-dss-cert-v01@openssh.com"))).toBeInstanceOf(Error);
  });
});

describe("sshCertificateProblem", () => {
  it("says nothing for a valid certificate and the right user, or any user when it names no principal", () => {
    const named = parseSshCertificate(sign("ed25519", "valid", ["-n", "deploy", "-V", "-5m:+1h"]));
    const open = parseSshCertificate(sign("ed25519", "open", ["-V", "-5m:+1h"]));
    if (named instanceof Error || open instanceof Error) throw new Error("unparsable");
    expect(sshCertificateProblem(named, "deploy")).toBeUndefined();
    expect(sshCertificateProblem(open, "anyone")).toBeUndefined();
  });

  it("names an expired certificate, one not valid yet, a wrong principal and a host certificate", () => {
    const certificate = parseSshCertificate(sign("ed25519", "window", ["-n", "deploy,ops", "-V", "20300101:20310101"]));
    const host = parseSshCertificate(sign("ed25519", "hostonly", ["-h", "-n", "web-1"]));
    if (certificate instanceof Error || host instanceof Error) throw new Error("unparsable");
    expect(sshCertificateProblem(certificate, "deploy", new Date(Date.UTC(2029, 0, 1)))).toMatch(/"id-window" is not valid before 2030-01-01T00:00:00/);
    expect(sshCertificateProblem(certificate, "deploy", new Date(Date.UTC(2032, 0, 1)))).toMatch(/"id-window" expired at 2031-01-01T00:00:00/);
    expect(sshCertificateProblem(certificate, "root", new Date(Date.UTC(2030, 5, 1)))).toBe(
      'certificate "id-window" is for "deploy", "ops", not the login user "root"',
    );
    expect(sshCertificateProblem(host, "deploy")).toContain("is a host certificate");
  });
});

describe("SshReader", () => {
  it("reads strings and integers in wire order and knows when it is done", () => {
    const eight = Buffer.alloc(8);
    eight.writeBigUInt64BE(42n);
    const four = Buffer.alloc(4);
    four.writeUInt32BE(7);
    const reader = new SshReader(Buffer.concat([sshString("abc"), four, eight]));
    expect(reader.text()).toBe("abc");
    expect(reader.uint32()).toBe(7);
    expect(reader.uint64()).toBe(42n);
    expect(reader.done).toBe(true);
    expect(() => reader.uint32()).toThrow("truncated");
    expect(() => new SshReader(Buffer.alloc(3)).uint64()).toThrow("truncated");
  });
});
