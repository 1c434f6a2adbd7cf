import { createHash, createHmac, timingSafeEqual } from "node:crypto";

/**
 * One usable line of a known_hosts file.
 * `@cert-authority` lines are parsed but never trust a key: ssh2 1.17 cannot negotiate certificate host key algorithms
 * (`ssh-ed25519-cert-v01@openssh.com`, ...), so a server's host certificate never reaches the verifier. A host known
 * only through its CA is refused, with an error that says so (`certificateAuthorityFor`).
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
  const body = pattern.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*").replace(/\?/g, ".");
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

/** The `@cert-authority` line that names this host, if any (to explain why the host is refused). */
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
