import { createHash, createHmac, createPublicKey, timingSafeEqual, verify, type KeyObject } from "node:crypto";
import { SshReader, parseSshCertificateBlob, type SshCertificate } from "@tunnel-sh/core/internal";

/**
 * One usable line of a known_hosts file. A `@cert-authority` line trusts the host certificates its CA signs for the
 * hosts it names (`verifyHostCertificate`); a `@revoked` line refuses its key wherever it appears.
 */
export interface KnownHostsEntry {
  readonly marker: "revoked" | "cert-authority" | undefined;
  /** The host field as written: comma-separated patterns, or one hashed `|1|salt|hash` name. */
  readonly hosts: string;
  readonly keyType: string;
  readonly key: Buffer;
  readonly file: string;
  readonly line: number;
}

/** The outcome of checking a presented host key. */
export type HostKeyVerdict =
  | { readonly status: "trusted"; readonly entry: KnownHostsEntry }
  | { readonly status: "revoked"; readonly entry: KnownHostsEntry }
  | { readonly status: "changed"; readonly entries: readonly KnownHostsEntry[] }
  | { readonly status: "unknown" };

/** Parse the text of a known_hosts file. Malformed lines are skipped, as OpenSSH does. */
export function parseKnownHosts(text: string, file = "known_hosts"): KnownHostsEntry[] {
  const entries: KnownHostsEntry[] = [];
  const lines = text.split(/\r?\n/);
  for (let index = 0; index < lines.length; index++) {
    const raw = (lines[index] ?? "").trim();
    if (raw === "" || raw.startsWith("#")) continue;
    const fields = raw.split(/\s+/);
    let marker: KnownHostsEntry["marker"];
    if (fields[0]?.startsWith("@")) {
      const name = fields.shift();
      if (name === "@revoked") marker = "revoked";
      else if (name === "@cert-authority") marker = "cert-authority";
      else continue;
    }
    const [hosts, keyType, keyBase64] = fields;
    if (!hosts || !keyType || !keyBase64) continue;
    const key = Buffer.from(keyBase64, "base64");
    if (key.length === 0 || blobKeyType(key) !== keyType) continue;
    entries.push({ marker, hosts, keyType, key, file, line: index + 1 });
  }
  return entries;
}

/** The name known_hosts files use for a host: `host` on port 22, `[host]:port` otherwise. */
export function knownHostsName(host: string, port: number): string {
  return port === 22 ? host : `[${host}]:${port}`;
}

/** The key type written at the start of an SSH public key blob (`ssh-ed25519`, ...). */
export function blobKeyType(key: Buffer): string | undefined {
  if (key.length < 4) return undefined;
  const length = key.readUInt32BE(0);
  if (length === 0 || length > 64 || key.length < 4 + length) return undefined;
  return key.subarray(4, 4 + length).toString("latin1");
}

/** `SHA256:` fingerprint of a key blob, as `ssh-keygen -l` prints it. */
export function fingerprint(key: Buffer): string {
  return `SHA256:${createHash("sha256").update(key).digest("base64").replace(/=+$/, "")}`;
}

function matchesHashed(field: string, name: string): boolean {
  // |1|base64(salt)|base64(HMAC-SHA1(salt, name))
  const parts = field.split("|");
  if (parts.length !== 4 || parts[1] !== "1") return false;
  const salt = Buffer.from(parts[2] ?? "", "base64");
  const expected = Buffer.from(parts[3] ?? "", "base64");
  if (salt.length === 0 || expected.length !== 20) return false;
  const actual = createHmac("sha1", salt).update(name).digest();
  return timingSafeEqual(actual, expected);
}

function globToRegExp(pattern: string): RegExp {
  const body = pattern
    .replace(/[.+^${}()|[\]\\]/g, "\\$&")
    .replace(/\*/g, ".*")
    .replace(/\?/g, ".");
  return new RegExp(`^${body}$`, "i");
}

/**
 * Does the host field of an entry match `name` (already in `[host]:port` form when the port is not 22)?
 * Plain fields are comma-separated glob patterns; a matching `!pattern` vetoes the line.
 */
export function hostFieldMatches(field: string, name: string): boolean {
  if (field.startsWith("|")) return matchesHashed(field, name);
  let matched = false;
  for (const pattern of field.split(",")) {
    if (pattern === "") continue;
    if (pattern.startsWith("!")) {
      if (globToRegExp(pattern.slice(1)).test(name)) return false;
    } else if (globToRegExp(pattern).test(name)) {
      matched = true;
    }
  }
  return matched;
}

/**
 * Check a presented host key against known_hosts entries, the way OpenSSH does:
 * a revoked key is refused wherever it appears; a key listed for the host is trusted;
 * a host that is listed with other keys has a changed key; otherwise it is unknown.
 */
export function verifyHostKey(entries: readonly KnownHostsEntry[], host: string, port: number, key: Buffer): HostKeyVerdict {
  const name = knownHostsName(host, port);
  for (const entry of entries) {
    if (entry.marker === "revoked" && entry.key.equals(key) && hostFieldMatches(entry.hosts, name)) {
      return { status: "revoked", entry };
    }
  }
  const forHost = entries.filter((entry) => entry.marker === undefined && hostFieldMatches(entry.hosts, name));
  const trusted = forHost.find((entry) => entry.key.equals(key));
  if (trusted) return { status: "trusted", entry: trusted };
  if (forHost.length > 0) return { status: "changed", entries: forHost };
  return { status: "unknown" };
}

/** The first `@cert-authority` line that names this host, if any. */
export function certificateAuthorityFor(entries: readonly KnownHostsEntry[], host: string, port: number): KnownHostsEntry | undefined {
  const name = knownHostsName(host, port);
  return entries.find((entry) => entry.marker === "cert-authority" && hostFieldMatches(entry.hosts, name));
}

/** The key types listed for a host, in file order — used to prefer those host key algorithms. */
export function knownKeyTypes(entries: readonly KnownHostsEntry[], host: string, port: number): string[] {
  const name = knownHostsName(host, port);
  const types: string[] = [];
  for (const entry of entries) {
    if (entry.marker === undefined && hostFieldMatches(entry.hosts, name) && !types.includes(entry.keyType)) {
      types.push(entry.keyType);
    }
  }
  return types;
}

/** A known_hosts line for a newly accepted key (written unhashed). */
export function knownHostsLine(host: string, port: number, key: Buffer): string {
  return `${knownHostsName(host, port)} ${blobKeyType(key) ?? "unknown"} ${key.toString("base64")}`;
}

/** The outcome of checking a presented host certificate against the `@cert-authority` and `@revoked` lines. */
export type HostCertificateVerdict =
  | { readonly status: "trusted"; readonly certificate: SshCertificate; readonly entry: KnownHostsEntry }
  | { readonly status: "revoked"; readonly certificate: SshCertificate; readonly entry: KnownHostsEntry }
  /** Not trusted as a certificate (`problem` says why); the key it certifies may still be listed itself. */
  | { readonly status: "refused"; readonly certificate: SshCertificate | undefined; readonly problem: string };

/**
 * Check a host certificate blob the way OpenSSH does: `@revoked` for the certificate, the key it certifies or its CA
 * refuses it; otherwise it is trusted when a `@cert-authority` line for the host holds its CA, the CA's signature
 * verifies, it is a host certificate, its principals include `host` (none means any host) and `now` is within its
 * validity window. A refused certificate is not the end: OpenSSH then checks the certified key as a plain host key.
 */
export function verifyHostCertificate(entries: readonly KnownHostsEntry[], host: string, port: number, blob: Buffer, now = new Date()): HostCertificateVerdict {
  const certificate = parseSshCertificateBlob(blob);
  if (certificate instanceof Error)
    return { status: "refused", certificate: undefined, problem: `host certificate that cannot be read (${certificate.message})` };
  const name = knownHostsName(host, port);
  const revokedKeys = [certificate.blob, certificate.publicKey, certificate.signatureKey];
  for (const entry of entries) {
    if (entry.marker !== "revoked" || !hostFieldMatches(entry.hosts, name)) continue;
    const listed = entry.keyType.endsWith("-cert-v01@openssh.com") ? parseSshCertificateBlob(entry.key) : undefined;
    const keys = listed === undefined || listed instanceof Error ? [entry.key] : [entry.key, listed.publicKey];
    if (keys.some((key) => revokedKeys.some((revoked) => revoked.equals(key)))) return { status: "revoked", certificate, entry };
  }
  const authorities = entries.filter((entry) => entry.marker === "cert-authority" && hostFieldMatches(entry.hosts, name));
  const described = `host certificate "${certificate.keyId}" (${certificate.type} ${fingerprint(certificate.publicKey)})`;
  const entry = authorities.find((authority) => authority.key.equals(certificate.signatureKey));
  if (entry === undefined) {
    const trusted = authorities.map((authority) => `${fingerprint(authority.key)} (${authority.file}:${authority.line})`).join(", ");
    return {
      status: "refused",
      certificate,
      problem:
        authorities.length === 0
          ? `${described} is signed by CA ${fingerprint(certificate.signatureKey)}, and no @cert-authority line names this host`
          : `${described} is signed by CA ${fingerprint(certificate.signatureKey)}, not by a certificate authority known_hosts trusts for this host: ${trusted}`,
    };
  }
  const problem = hostCertificateProblem(certificate, host, now);
  if (problem !== undefined) return { status: "refused", certificate, problem: `${described}, signed by the CA of ${entry.file}:${entry.line}, ${problem}` };
  return { status: "trusted", certificate, entry };
}

/** Why a certificate signed by a trusted CA does not certify `host` at `now`, or `undefined`. */
function hostCertificateProblem(certificate: SshCertificate, host: string, now: Date): string | undefined {
  const seconds = BigInt(Math.floor(now.getTime() / 1000));
  const when = (value: bigint) => (value >= 0xffff_ffff_ffff_ffffn ? "forever" : new Date(Number(value) * 1000).toISOString());
  const signature = certificateSignatureProblem(certificate);
  if (signature !== undefined) return signature;
  if (certificate.kind !== "host") return "is a user certificate, not a host certificate";
  if (seconds < certificate.validAfter) return `is not valid before ${when(certificate.validAfter)}`;
  if (seconds >= certificate.validBefore) return `expired at ${when(certificate.validBefore)}`;
  // ssh lowercases the host name it was given and compares it with each principal as written.
  if (certificate.principals.length > 0 && !certificate.principals.includes(host.toLowerCase())) {
    return `lists the principals ${certificate.principals.map((principal) => `"${principal}"`).join(", ")}, not the host "${host}"`;
  }
  return undefined;
}

/** CA key types and the signature algorithms each may sign with (SHA-1 `ssh-rsa` refused, as OpenSSH 8.2+ does). */
const CA_SIGNATURES: Readonly<Record<string, Readonly<Record<string, string | null>>>> = {
  "ssh-ed25519": { "ssh-ed25519": null },
  "ssh-rsa": { "rsa-sha2-512": "sha512", "rsa-sha2-256": "sha256" },
  "ecdsa-sha2-nistp256": { "ecdsa-sha2-nistp256": "sha256" },
  "ecdsa-sha2-nistp384": { "ecdsa-sha2-nistp384": "sha384" },
  "ecdsa-sha2-nistp521": { "ecdsa-sha2-nistp521": "sha512" },
};

const CURVES: Readonly<Record<string, { readonly crv: string; readonly size: number }>> = {
  nistp256: { crv: "P-256", size: 32 },
  nistp384: { crv: "P-384", size: 48 },
  nistp521: { crv: "P-521", size: 66 },
};

/** An SSH public key blob (ed25519, RSA or ECDSA) as a Node key. */
function sshPublicKey(blob: Buffer): KeyObject {
  const reader = new SshReader(blob);
  const type = reader.text();
  const base64url = (value: Buffer) => value.toString("base64url");
  const unsigned = (value: Buffer) => (value[0] === 0 ? value.subarray(1) : value);
  if (type === "ssh-ed25519") return createPublicKey({ key: { kty: "OKP", crv: "Ed25519", x: base64url(reader.string()) }, format: "jwk" });
  if (type === "ssh-rsa") {
    const e = unsigned(reader.string());
    const n = unsigned(reader.string());
    return createPublicKey({ key: { kty: "RSA", e: base64url(e), n: base64url(n) }, format: "jwk" });
  }
  const curve = CURVES[reader.text()];
  const point = reader.string();
  if (curve === undefined || point[0] !== 4 || point.length !== 1 + 2 * curve.size) throw new Error(`unsupported CA key type ${type}`);
  return createPublicKey({
    key: { kty: "EC", crv: curve.crv, x: base64url(point.subarray(1, 1 + curve.size)), y: base64url(point.subarray(1 + curve.size)) },
    format: "jwk",
  });
}

/** Does the CA's signature over the certificate verify? A reason when it does not. */
function certificateSignatureProblem(certificate: SshCertificate): string | undefined {
  try {
    const caType = new SshReader(certificate.signatureKey).text();
    const reader = new SshReader(certificate.signature);
    const algorithm = reader.text();
    let signature = Buffer.from(reader.string());
    const hashes = CA_SIGNATURES[caType];
    const hash = hashes?.[algorithm];
    if (hashes === undefined || hash === undefined) return `is signed with ${algorithm} by a ${caType} CA, which tunnel does not accept`;
    const key = sshPublicKey(certificate.signatureKey);
    if (caType.startsWith("ecdsa-")) {
      // SSH writes ECDSA signatures as two mpints; Node wants r || s at the curve's size (IEEE P1363).
      const size = (CURVES[caType.slice("ecdsa-sha2-".length)] as { size: number }).size;
      const parts = new SshReader(signature);
      const fixed = (value: Buffer) => {
        const bytes = value[0] === 0 ? value.subarray(1) : value;
        return Buffer.concat([Buffer.alloc(Math.max(0, size - bytes.length)), bytes]);
      };
      signature = Buffer.concat([fixed(parts.string()), fixed(parts.string())]);
      return verify(hash, certificate.signedData, { key, dsaEncoding: "ieee-p1363" }, signature)
        ? undefined
        : "has a signature that does not verify with the CA's key";
    }
    return verify(hash, certificate.signedData, key, signature) ? undefined : "has a signature that does not verify with the CA's key";
  } catch (error) {
    return `has a signature that cannot be checked: ${(error as Error).message}`;
  }
}
