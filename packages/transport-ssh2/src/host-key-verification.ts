/**
 * Host key checking for each hop, as OpenSSH does it: known_hosts (plain, hashed, `@revoked`, `@cert-authority`),
 * the `hostKeyChecking` policy, and which host key algorithms to ask the server for.
 */
import { appendFileSync, mkdirSync, readFileSync, statSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, join } from "node:path";
import { ConfigError, HostKeyError, formatTarget, type Target, type TunnelError } from "@tunnel-sh/core";
import type { ConnectConfig, ServerHostKeyAlgorithm } from "ssh2";
import type { Hop } from "./hop.js";
import {
  blobKeyType,
  certificateAuthorityFor,
  fingerprint,
  knownHostsLine,
  knownKeyTypes,
  parseKnownHosts,
  verifyHostCertificate,
  verifyHostKey,
  type KnownHostsEntry,
} from "./known-hosts.js";
import type { ResolvedOptions } from "./options.js";
import { HOST_CERTIFICATE_KEY_ALGORITHMS, hostCertificateSupport } from "./ssh2-certificates.js";

/** ssh2 1.17's default host key algorithms, most preferred first. */
const DEFAULT_HOST_KEY_ALGORITHMS: readonly ServerHostKeyAlgorithm[] = [
  "ssh-ed25519",
  "ecdsa-sha2-nistp256",
  "ecdsa-sha2-nistp384",
  "ecdsa-sha2-nistp521",
  "rsa-sha2-512",
  "rsa-sha2-256",
  "ssh-rsa",
];

function algorithmsForKeyType(keyType: string): ServerHostKeyAlgorithm[] {
  if (keyType === "ssh-rsa") return ["rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"];
  return DEFAULT_HOST_KEY_ALGORITHMS.includes(keyType as ServerHostKeyAlgorithm) ? [keyType as ServerHostKeyAlgorithm] : [];
}

/**
 * The known_hosts files parsed once and shared by every connect of a transport, each read again only when it changed
 * (another inode, size or modification time). A connect then neither parses the file again nor leaves a Buffer per
 * key line behind: key bytes of a large known_hosts, parsed per connect, kept pool slabs alive beside each connection.
 * A missing file has no entries; an unreadable one is a `ConfigError`.
 */
export class KnownHostsCache {
  private readonly files = new Map<string, { readonly stamp: string; readonly entries: readonly KnownHostsEntry[] }>();

  /** Every entry of the files `options` names, in order; a new array each call (a connect may add to it). */
  read(options: ResolvedOptions): KnownHostsEntry[] {
    const entries: KnownHostsEntry[] = [];
    for (const file of knownHostsFiles(options)) {
      let stamp: string;
      try {
        const info = statSync(file);
        stamp = `${info.ino}:${info.size}:${info.mtimeMs}:${info.ctimeMs}`;
      } catch (error) {
        if (!missing(error)) throw unreadable(file, error);
        this.files.delete(file);
        continue;
      }
      const cached = this.files.get(file);
      if (cached?.stamp === stamp) {
        entries.push(...cached.entries);
        continue;
      }
      let text: string;
      try {
        text = readFileSync(file, "utf8");
      } catch (error) {
        if (missing(error)) continue;
        throw unreadable(file, error);
      }
      const parsed = parseKnownHosts(text, file);
      this.files.set(file, { stamp, entries: parsed });
      entries.push(...parsed);
    }
    return entries;
  }
}

function missing(error: unknown): boolean {
  return (error as NodeJS.ErrnoException).code === "ENOENT";
}

function unreadable(file: string, error: unknown): ConfigError {
  const code = (error as NodeJS.ErrnoException).code;
  return new ConfigError("knownHostsFile", `cannot read ${file}: ${code ?? String(error)}`, { cause: error });
}

function knownHostsFiles(options: ResolvedOptions): readonly string[] {
  return options.knownHostsFiles.length > 0 ? options.knownHostsFiles : [join(homedir(), ".ssh", "known_hosts")];
}

/** The host key algorithms to offer a hop, or `undefined` for ssh2's own default list. */
export function hostKeyAlgorithms(options: ResolvedOptions, hop: Hop, knownHosts: readonly KnownHostsEntry[]): ConnectConfig["algorithms"] {
  const algorithms = options.algorithms;
  if (algorithms?.serverHostKey !== undefined || options.hostKeyChecking === "insecure-accept-any") return algorithms;
  // Like OpenSSH, ask first for host certificates when a @cert-authority line names the host, then for the key
  // types known_hosts holds for it, so a host with several keys presents one we can check.
  const certificates =
    certificateAuthorityFor(knownHosts, hop.host, hop.port) !== undefined && hostCertificateSupport().available
      ? (HOST_CERTIFICATE_KEY_ALGORITHMS as ServerHostKeyAlgorithm[])
      : [];
  const preferred = [...certificates, ...knownKeyTypes(knownHosts, hop.host, hop.port).flatMap(algorithmsForKeyType)];
  if (preferred.length === 0) return algorithms;
  const order = [...new Set([...preferred, ...DEFAULT_HOST_KEY_ALGORITHMS])];
  // ssh2's default is this same list: asking for it by name would build a key-exchange offer for every
  // connection (kept for its life, re-keys use it) instead of sharing ssh2's one.
  if (algorithms === undefined && order.every((name, index) => name === DEFAULT_HOST_KEY_ALGORITHMS[index])) return undefined;
  return { ...algorithms, serverHostKey: order };
}

/** One hop's host key check: ssh2's `hostVerifier`, and why it refused the key, once it did. */
export interface HostKeyCheck {
  readonly hostVerifier: (key: Buffer, verify: (valid: boolean) => void) => void;
  refusal(this: void): TunnelError | undefined;
}

export function hostKeyCheck(options: ResolvedOptions, hop: Hop, knownHosts: KnownHostsEntry[]): HostKeyCheck {
  const hopTarget: Target = { host: hop.host, port: hop.port, user: hop.user };
  let hostKeyError: TunnelError | undefined;
  const policy = options.hostKeyChecking;
  const files = knownHostsFiles(options);
  const refuse = (message: string, key: Buffer, cause?: unknown): false => {
    hostKeyError = new HostKeyError(message, { target: hopTarget, fingerprint: fingerprint(key), ...(cause === undefined ? {} : { cause }) });
    return false;
  };
  // ssh2 keeps the verifier for the connection's life (every re-key asks it again), so it must not hold on to the
  // parsed known_hosts: once a key was accepted, a re-key must present that same key, and `known` goes.
  let known: KnownHostsEntry[] | undefined = knownHosts;
  const checkHostKey = (presented: Buffer): boolean => {
    const entries = known ?? [];
    if (policy === "insecure-accept-any") return true;
    let key = presented;
    // What a refused host certificate adds to the refusal of its plain key.
    let certificateProblem: string | undefined;
    if (blobKeyType(presented)?.endsWith("-cert-v01@openssh.com")) {
      const certified = verifyHostCertificate(entries, hop.host, hop.port, presented);
      const certificate = certified.certificate;
      if (certified.status === "trusted") return true;
      if (certified.status === "revoked") {
        const shown = `host certificate "${certified.certificate.keyId}" (${certified.certificate.type} ${fingerprint(certified.certificate.publicKey)})`;
        return refuse(
          `the ${shown} of ${formatTarget(hopTarget)} is revoked in ${certified.entry.file}:${certified.entry.line}`,
          certified.certificate.publicKey,
        );
      }
      if (certificate === undefined) return refuse(`${formatTarget(hopTarget)} presented a ${certified.problem}`, presented);
      // Like OpenSSH: a certificate that does not verify leaves its plain key, which known_hosts may list itself.
      certificateProblem = certified.problem;
      key = certificate.publicKey;
    }
    const verdict = verifyHostKey(entries, hop.host, hop.port, key);
    const shown = `${blobKeyType(key) ?? "unknown"} ${fingerprint(key)}`;
    const because = certificateProblem === undefined ? "" : `; the ${certificateProblem}`;
    if (verdict.status === "trusted") return true;
    if (verdict.status === "revoked") {
      return refuse(`the host key of ${formatTarget(hopTarget)} (${shown}) is revoked in ${verdict.entry.file}:${verdict.entry.line}`, key);
    }
    if (verdict.status === "changed") {
      const where = verdict.entries.map((entry) => `${entry.file}:${entry.line}`).join(", ");
      return refuse(
        `the host key of ${formatTarget(hopTarget)} has CHANGED: the server presented ${shown}, known_hosts lists other keys (${where}); refusing to connect${because}`,
        key,
      );
    }
    if (certificateProblem !== undefined) {
      return refuse(
        `the host key of ${formatTarget(hopTarget)} (${shown}) is not in known_hosts and its host certificate is not trusted: the ${certificateProblem}`,
        key,
      );
    }
    if (policy === "accept-new") {
      const file = files[0] as string;
      try {
        mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
        appendFileSync(file, `${knownHostsLine(hop.host, hop.port, key)}\n`, { mode: 0o600 });
        const added = parseKnownHosts(knownHostsLine(hop.host, hop.port, key), file);
        entries.push(...added);
        return true;
      } catch (error) {
        return refuse(`cannot record the new host key of ${formatTarget(hopTarget)} in ${file}: ${(error as Error).message}`, key, error);
      }
    }
    const authority = certificateAuthorityFor(entries, hop.host, hop.port);
    const support = hostCertificateSupport();
    if (authority !== undefined && !support.available) {
      return refuse(
        `the host key of ${formatTarget(hopTarget)} (${shown}) is not in known_hosts; ${authority.file}:${authority.line} trusts a certificate authority for it, but host certificates are off in this process (${support.reason})`,
        key,
      );
    }
    if (authority !== undefined) {
      return refuse(
        `the host key of ${formatTarget(hopTarget)} (${shown}) is not in known_hosts, and the server presented no host certificate for the certificate authority of ${authority.file}:${authority.line}`,
        key,
      );
    }
    return refuse(`the host key of ${formatTarget(hopTarget)} (${shown}) is not in known_hosts and hostKeyChecking is "strict"`, key);
  };
  let accepted: Buffer | undefined;
  const hostVerifier = (key: Buffer, verify: (valid: boolean) => void): void => {
    if (accepted) return verify(accepted.equals(key));
    const valid = checkHostKey(key);
    if (valid && policy !== "insecure-accept-any") {
      // A copy of its own: a small Buffer.from() would keep a whole shared 8 KiB pool slab alive.
      accepted = Buffer.allocUnsafeSlow(key.length);
      key.copy(accepted);
      known = undefined;
    }
    verify(valid);
  };
  return { hostVerifier, refusal: () => hostKeyError };
}
