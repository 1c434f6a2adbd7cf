/**
 * User certificates for ssh2 1.17 (see `ssh2-certificates.ts` for the whole patch): a key object whose public blob is
 * the certificate, and `Protocol#authPK` wrapped so that a certificate's signed request carries the plain signature
 * algorithm inside the signature.
 */
import { createRequire } from "node:module";
import { CERTIFIED_KEY_TYPES, sshString, type SshCertificate } from "@tunnel-sh/core/internal";
import type { ParsedKey } from "ssh2";
import { checkHostCertificateInternals } from "./host-certificate-patch.js";

const require = createRequire(import.meta.url);

/** The marker on a certificate key: the algorithm name its signatures carry. */
export const SIGNATURE_ALGORITHM = Symbol.for("tunnel-sh.ssh2-certificate.signature-algorithm");

/** The request algorithm and the signature algorithm (and hash) for a certificate of `type`. */
function algorithms(type: string): { request: string; signature: string; hash: string | undefined } {
  // SHA-1 `ssh-rsa` signatures are refused by OpenSSH 8.8+; rsa-sha2-512 is what OpenSSH's client picks.
  if (type === "ssh-rsa-cert-v01@openssh.com") return { request: "rsa-sha2-512-cert-v01@openssh.com", signature: "rsa-sha2-512", hash: "sha512" };
  return { request: type, signature: CERTIFIED_KEY_TYPES[type] as string, hash: undefined };
}

/**
 * A key object ssh2 authenticates with: the public blob is the certificate, signatures come from `sign` (the
 * certified private key, or an agent). Inherits from `base` so ssh2 recognises it as a parsed key.
 */
export function certificateKey(base: ParsedKey, certificate: SshCertificate): ParsedKey {
  const { request, signature, hash } = algorithms(certificate.type);
  return Object.create(base, {
    type: { value: request, enumerable: true },
    comment: { value: certificate.keyId, enumerable: true },
    getPublicSSH: { value: () => certificate.blob },
    sign: { value: (data: Buffer) => base.sign(data, hash) },
    [SIGNATURE_ALGORITHM]: { value: signature },
    certificate: { value: certificate },
  }) as ParsedKey;
}

/** The hash an agent must sign a certificate key's challenge with (`rsa-sha2-512` needs SHA-512), if any. */
export function certificateSignatureHash(key: unknown): string | undefined {
  const signature = (key as Record<symbol, unknown> | null)?.[SIGNATURE_ALGORITHM];
  return signature === "rsa-sha2-512" ? "sha512" : signature === "rsa-sha2-256" ? "sha256" : undefined;
}

interface ProtocolInternals {
  _packetRW: { write: { allocStart: number; alloc(size: number): Buffer; finalize(packet: Buffer): Buffer } };
  _authsQueue: string[];
}

type AuthPk = (this: ProtocolInternals, username: string, pubKey: unknown, keyAlgo?: unknown, cbSign?: unknown) => void;

const PATCHED = Symbol.for("tunnel-sh.ssh2-certificate.patched");

let internalsChecked: { readonly missing: string | undefined } | undefined;

/**
 * What both patches (user and host certificates) need from ssh2's internals; a message naming the first thing
 * missing, or `undefined`.
 */
export function missingSsh2Internals(): string | undefined {
  return missingUserCertificateInternals() ?? checkHostCertificateInternals();
}

export function missingUserCertificateInternals(): string | undefined {
  internalsChecked ??= { missing: checkUserCertificateInternals() };
  return internalsChecked.missing;
}

function checkUserCertificateInternals(): string | undefined {
  let Protocol: { prototype: Record<string | symbol, unknown> } | undefined;
  let utils: { sendPacket?: unknown } | undefined;
  try {
    Protocol = require("ssh2/lib/protocol/Protocol.js") as typeof Protocol;
    utils = require("ssh2/lib/protocol/utils.js") as typeof utils;
  } catch (error) {
    return `ssh2's protocol modules moved (${(error as Error).message})`;
  }
  const authPK = Protocol?.prototype["authPK"];
  if (typeof authPK !== "function") return "ssh2's Protocol#authPK is gone";
  const source = Function.prototype.toString.call(authPK);
  // The signature algorithm name is written from `keyAlgo`, after `pubKey.getPublicSSH()`, with sendPacket: the
  // shape this patch replaces for certificate keys.
  for (const marker of ["getPublicSSH()", "cbSign(packet", "utf8Write(keyAlgo", "_authsQueue.push('publickey')", "this._packetRW.write"]) {
    if (!source.includes(marker)) return `ssh2's Protocol#authPK changed (no ${marker})`;
  }
  if (typeof utils?.sendPacket !== "function") return "ssh2's sendPacket is gone";
  return undefined;
}

/** Patch ssh2's `Protocol#authPK` for certificate keys, once per loaded ssh2. Throws when ssh2 changed. */
export function installCertificateSupport(): void {
  const Protocol = require("ssh2/lib/protocol/Protocol.js") as { prototype: Record<string | symbol, unknown> };
  if (Protocol.prototype[PATCHED]) return;
  const missing = missingUserCertificateInternals();
  if (missing !== undefined) throw new Error(`user certificates need a patch of ssh2 that no longer applies: ${missing}`);
  const { sendPacket } = require("ssh2/lib/protocol/utils.js") as { sendPacket: (protocol: unknown, packet: Buffer) => void };
  const original = Protocol.prototype["authPK"] as AuthPk;
  const patched: AuthPk = function (this: ProtocolInternals, username, pubKey, keyAlgo, cbSign) {
    const signatureAlgorithm = (pubKey as Record<symbol, unknown> | null)?.[SIGNATURE_ALGORITHM];
    if (typeof signatureAlgorithm !== "string") return original.call(this, username, pubKey, keyAlgo, cbSign);
    if (typeof keyAlgo === "function") {
      cbSign = keyAlgo;
      keyAlgo = undefined;
    }
    const key = pubKey as ParsedKey;
    const requestAlgorithm = typeof keyAlgo === "string" ? keyAlgo : key.type;
    // The query ("would this key do?") and the data to sign are right as ssh2 builds them: only the final signed
    // request is built here.
    if (typeof cbSign !== "function") return original.call(this, username, pubKey, requestAlgorithm);
    const sign = cbSign as (data: Buffer, done: (signature: Buffer) => void) => void;
    return original.call(this, username, pubKey, requestAlgorithm, (data: Buffer) => {
      sign(data, (signature) => {
        const payload = Buffer.concat([
          Buffer.from([50]), // SSH_MSG_USERAUTH_REQUEST
          sshString(username),
          sshString("ssh-connection"),
          sshString("publickey"),
          Buffer.from([1]),
          sshString(requestAlgorithm),
          sshString(key.getPublicSSH()),
          sshString(Buffer.concat([sshString(signatureAlgorithm), sshString(signature)])),
        ]);
        const writer = this._packetRW.write;
        const start = writer.allocStart;
        const packet = writer.alloc(payload.length);
        payload.copy(packet, start);
        this._authsQueue.push("publickey");
        sendPacket(this, writer.finalize(packet));
      });
    });
  };
  Object.defineProperty(Protocol.prototype, "authPK", { value: patched, writable: true, configurable: true });
  Object.defineProperty(Protocol.prototype, PATCHED, { value: true });
}
