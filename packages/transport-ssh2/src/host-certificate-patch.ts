/**
 * Host certificates for ssh2 1.17 (see `ssh2-certificates.ts` for the whole patch): ssh2's key exchange is prepared,
 * when this module is first evaluated and before ssh2 is loaded, to negotiate `*-cert-v01@openssh.com` host keys and
 * hand the whole certificate to the transport's host verifier.
 */
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { CERTIFIED_KEY_TYPES, parseSshCertificateBlob, sshString } from "@tunnel-sh/core/internal";

type Ssh2 = typeof import("ssh2");

const require = createRequire(import.meta.url);

/**
 * Host key algorithms for host certificates, most preferred first (OpenSSH's order), each with the type of the
 * certificate blob the server sends and the algorithm of the exchange signature made with the certified key.
 */
const HOST_CERTIFICATE_ALGORITHMS: Readonly<Record<string, { readonly blobType: string; readonly signature: string }>> = {
  "ssh-ed25519-cert-v01@openssh.com": { blobType: "ssh-ed25519-cert-v01@openssh.com", signature: "ssh-ed25519" },
  "ecdsa-sha2-nistp256-cert-v01@openssh.com": { blobType: "ecdsa-sha2-nistp256-cert-v01@openssh.com", signature: "ecdsa-sha2-nistp256" },
  "ecdsa-sha2-nistp384-cert-v01@openssh.com": { blobType: "ecdsa-sha2-nistp384-cert-v01@openssh.com", signature: "ecdsa-sha2-nistp384" },
  "ecdsa-sha2-nistp521-cert-v01@openssh.com": { blobType: "ecdsa-sha2-nistp521-cert-v01@openssh.com", signature: "ecdsa-sha2-nistp521" },
  // SHA-1 `ssh-rsa-cert-v01@openssh.com` is left out, as OpenSSH 8.8+ leaves it out.
  "rsa-sha2-512-cert-v01@openssh.com": { blobType: "ssh-rsa-cert-v01@openssh.com", signature: "rsa-sha2-512" },
  "rsa-sha2-256-cert-v01@openssh.com": { blobType: "ssh-rsa-cert-v01@openssh.com", signature: "rsa-sha2-256" },
};

/** The host certificate algorithms the transport offers first for a host with a `@cert-authority` line. */
export const HOST_CERTIFICATE_KEY_ALGORITHMS: readonly string[] = Object.keys(HOST_CERTIFICATE_ALGORITHMS);

const HOST_PATCHED = Symbol.for("tunnel-sh.ssh2-host-certificate.patched");
const PROTOCOL_KEX = Symbol.for("tunnel-sh.ssh2-host-certificate.kex");

interface KeyExchangeInternals {
  negotiated?: { serverHostKey?: string };
  _hostKey?: unknown;
}

type ParseDerKey = (data: Buffer, type: string) => unknown;

function ssh2Source(module: string): string {
  return readFileSync(require.resolve(`ssh2/lib/protocol/${module}`), "utf8");
}

/** What the host certificate patch needs from ssh2, read without loading its protocol modules. */
export function checkHostCertificateInternals(): string | undefined {
  let kex: string;
  let protocol: string;
  let client: string;
  try {
    kex = ssh2Source("kex.js");
    protocol = ssh2Source("Protocol.js");
    client = readFileSync(require.resolve("ssh2/lib/client.js"), "utf8");
  } catch (error) {
    return `ssh2's protocol modules moved (${(error as Error).message})`;
  }
  const expected: readonly (readonly [string, string, string])[] = [
    ["kex.js", kex, "const { parseDERKey } = require('./keyParser.js');"],
    ["kex.js", kex, "parsedHostKey = parseDERKey(hostKey, name);"],
    ["kex.js", kex, "self._kex = createKeyExchange(init, self, payload);"],
    ["kex.js", kex, "if (hostPubKeyType !== this.negotiated.serverHostKey) {"],
    ["kex.js", kex, "this._hostKey = hostPubKey;"],
    ["kex.js", kex, "this._protocol._hostVerifier(hostPubKey,"],
    ["kex.js", kex, "if (sigType !== negotiated.serverHostKey) {"],
    ["kex.js", kex, "case 'rsa-sha2-512': hashAlgo = 'sha512'; break;"],
    ["Protocol.js", protocol, "this._kex = undefined;"],
    ["Protocol.js", protocol, "this._server = !!config.server;"],
    ["client.js", client, "SUPPORTED_SERVER_HOST_KEY);"],
  ];
  for (const [file, source, marker] of expected) {
    if (!source.includes(marker)) return `ssh2's ${file} changed (no ${marker})`;
  }
  return undefined;
}

/**
 * Install the host certificate patch (see the top of this file), before anything loads ssh2's key exchange. Never
 * throws: a patch that cannot apply leaves host certificates off, and `hostCertificateSupport()` says why.
 */
function installHostCertificateSupport(): string | undefined {
  let keyParser: Record<string | symbol, unknown>;
  let constants: { SUPPORTED_SERVER_HOST_KEY?: unknown };
  try {
    keyParser = require("ssh2/lib/protocol/keyParser.js") as Record<string | symbol, unknown>;
    if (keyParser[HOST_PATCHED]) return undefined; // a second copy of this module, same ssh2
    const kexPath = require.resolve("ssh2/lib/protocol/kex.js");
    if (require.cache[kexPath] !== undefined) {
      return "ssh2 was loaded before @tunnel-sh/transport-ssh2 could prepare it for host certificates: import @tunnel-sh/transport-ssh2 before anything that imports ssh2";
    }
    const missing = checkHostCertificateInternals();
    if (missing !== undefined) return `host certificates need a patch of ssh2 that no longer applies: ${missing}`;
    constants = require("ssh2/lib/protocol/constants.js") as typeof constants;
  } catch (error) {
    return `host certificates need a patch of ssh2 that no longer applies: ${(error as Error).message}`;
  }
  const original = keyParser["parseDERKey"];
  const supported = constants.SUPPORTED_SERVER_HOST_KEY;
  if (typeof original !== "function") return "host certificates need a patch of ssh2 that no longer applies: ssh2's keyParser.parseDERKey is gone";
  if (!Array.isArray(supported)) return "host certificates need a patch of ssh2 that no longer applies: ssh2's SUPPORTED_SERVER_HOST_KEY is gone";

  const parseDERKey: ParseDerKey = (data, type) => {
    const certified = CERTIFIED_KEY_TYPES[type];
    if (certified === undefined) return (original as ParseDerKey)(data, type);
    const certificate = parseSshCertificateBlob(Buffer.concat([sshString(type), data]));
    if (certificate instanceof Error) return certificate;
    const plain = certificate.publicKey;
    return (original as ParseDerKey)(plain.subarray(4 + plain.readUInt32BE(0)), certified);
  };
  keyParser["parseDERKey"] = parseDERKey;
  Object.defineProperty(keyParser, HOST_PATCHED, { value: true });
  for (const algorithm of HOST_CERTIFICATE_KEY_ALGORITHMS) if (!supported.includes(algorithm)) supported.push(algorithm);

  let Protocol: { prototype: object };
  try {
    // Loads kex.js, which now takes the wrapped parseDERKey.
    Protocol = require("ssh2/lib/protocol/Protocol.js") as typeof Protocol;
  } catch (error) {
    return `host certificates need a patch of ssh2 that no longer applies: ${(error as Error).message}`;
  }
  Object.defineProperty(Protocol.prototype, "_kex", {
    configurable: true,
    get(this: Record<symbol, unknown>) {
      return this[PROTOCOL_KEX];
    },
    set(this: Record<string | symbol, unknown>, kex: KeyExchangeInternals | undefined) {
      this[PROTOCOL_KEX] = kex;
      if (kex !== undefined && kex !== null && this["_server"] !== true) prepareCertificateExchange(kex);
    },
  });
  return undefined;
}

/** Steer one client key exchange that negotiated a host certificate algorithm through ssh2's checks. */
function prepareCertificateExchange(kex: KeyExchangeInternals): void {
  const negotiated = kex.negotiated;
  const algorithm = negotiated?.serverHostKey === undefined ? undefined : HOST_CERTIFICATE_ALGORITHMS[negotiated.serverHostKey];
  if (negotiated === undefined || algorithm === undefined) return;
  // The reply's host key must be a certificate of this type...
  negotiated.serverHostKey = algorithm.blobType;
  let hostKey = kex._hostKey;
  Object.defineProperty(kex, "_hostKey", {
    configurable: true,
    enumerable: true,
    get: () => hostKey,
    set(value: unknown) {
      hostKey = value;
      // ...and the exchange signature is made with the key it certifies.
      if (value !== undefined) negotiated.serverHostKey = algorithm.signature;
    },
  });
}

/** Why host certificates cannot be verified in this process, or `undefined` when they can. */
const hostCertificateProblem = installHostCertificateSupport();

/** `{ available: true }`, or why a server's host certificate cannot be verified in this process. */
export function hostCertificateSupport(): { readonly available: true } | { readonly available: false; readonly reason: string } {
  return hostCertificateProblem === undefined ? { available: true } : { available: false, reason: hostCertificateProblem };
}

let ssh2Module: Ssh2 | undefined;

/** The ssh2 library, loaded on first use, after the host certificate patch. */
export function loadSsh2(): Ssh2 {
  ssh2Module ??= require("ssh2") as Ssh2;
  return ssh2Module;
}
