/**
 * OpenSSH user certificates (`*-cert.pub`, PROTOCOL.certkeys) for ssh2 1.17, which has none (ssh2 issue #551).
 *
 * Two pieces are missing in ssh2. Its key parser drops certificate blobs; this file parses them itself and wraps the
 * certified private key in a key object whose public blob is the certificate. And `Protocol#authPK` writes one
 * algorithm name both into the request (where a certificate needs `ssh-ed25519-cert-v01@openssh.com`) and into the
 * signature (where the server expects the plain `ssh-ed25519` / `rsa-sha2-512`). `installCertificateSupport()` wraps
 * `authPK` — the only place tunnel patches ssh2 — so that for certificate keys the signed request carries the right
 * name inside the signature; every other key goes through ssh2's own code untouched. It refuses to install, with an
 * error naming what changed, when the ssh2 internals it relies on are not there (test/ssh2-certificates.test.ts
 * checks them, so an ssh2 upgrade that breaks the patch fails the tests).
 *
 * ssh2's agent client drops the certificates an ssh-agent holds for the same reason; `certificateAgent()` lists the
 * agent's identities itself and signs through ssh2's public `OpenSSHAgent`.
 */
import { createRequire } from "node:module";
import { connect } from "node:net";
import {
  CERTIFIED_KEY_TYPES,
  SshReader,
  parseSshCertificateBlob,
  sshString,
  type SshCertificate,
} from "@tunnel-sh/core";
import ssh2 from "ssh2";
import type { BaseAgent, ParsedKey } from "ssh2";

/** The marker on a certificate key: the algorithm name its signatures carry. */
const SIGNATURE_ALGORITHM = Symbol.for("tunnel-sh.ssh2-certificate.signature-algorithm");

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

/** What the patch needs from ssh2's internals; a message naming the first thing missing, or `undefined`. */
export function missingSsh2Internals(): string | undefined {
  internalsChecked ??= { missing: checkSsh2Internals() };
  return internalsChecked.missing;
}

function checkSsh2Internals(): string | undefined {
  const require = createRequire(import.meta.url);
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
  const require = createRequire(import.meta.url);
  const Protocol = require("ssh2/lib/protocol/Protocol.js") as { prototype: Record<string | symbol, unknown> };
  if (Protocol.prototype[PATCHED]) return;
  const missing = missingSsh2Internals();
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

/** SSH_AGENTC_REQUEST_IDENTITIES → SSH_AGENT_IDENTITIES_ANSWER: the raw key blobs an agent holds. */
function listAgentBlobs(socketPath: string): Promise<Buffer[]> {
  return new Promise((resolve, reject) => {
    const socket = connect(socketPath);
    const chunks: Buffer[] = [];
    let settled = false;
    const finish = (error: Error | undefined, blobs?: Buffer[]): void => {
      if (settled) return;
      settled = true;
      socket.destroy();
      if (error) reject(error);
      else resolve(blobs ?? []);
    };
    socket.on("error", (error) => finish(new Error(`cannot reach the agent: ${error.message}`)));
    socket.on("close", () => finish(new Error("the agent closed the connection")));
    socket.on("connect", () => socket.write(Buffer.from([0, 0, 0, 1, 11])));
    socket.on("data", (chunk: Buffer) => {
      chunks.push(chunk);
      const data = Buffer.concat(chunks);
      if (data.length < 4 || data.length < 4 + data.readUInt32BE(0)) return;
      const body = data.subarray(4, 4 + data.readUInt32BE(0));
      if (body[0] !== 12) return finish(new Error("the agent refused to list its keys"));
      try {
        const reader = new SshReader(body.subarray(1));
        const count = reader.uint32();
        const blobs: Buffer[] = [];
        for (let index = 0; index < count; index++) {
          blobs.push(Buffer.from(reader.string()));
          reader.string(); // comment
        }
        finish(undefined, blobs);
      } catch (error) {
        finish(error as Error);
      }
    });
  });
}

/** A key object for one agent identity: ssh2's own parse, or a certificate key over the certified public key. */
function agentKey(blob: Buffer): ParsedKey | undefined {
  const type = new SshReader(blob).text();
  if (!type.endsWith("-cert-v01@openssh.com")) {
    const key = ssh2.utils.parseKey(blob);
    return key instanceof Error ? undefined : (key as ParsedKey);
  }
  const certificate = parseSshCertificateBlob(blob);
  if (certificate instanceof Error) return undefined;
  const base = ssh2.utils.parseKey(certificate.publicKey);
  return base instanceof Error ? undefined : certificateKey(base as ParsedKey, certificate);
}

type AgentCallback<T> = (error: Error | null | undefined, value?: T) => void;

/**
 * An ssh2 agent on `socketPath` that also offers the certificates the agent holds (each before the other keys, as
 * OpenSSH does), signs certificate challenges with the algorithm the certificate needs, and forwards like ssh2's own.
 */
export function certificateAgent(socketPath: string): BaseAgent | string {
  // Without the patch the agent's certificates cannot be used: ssh2's own agent client (which drops them) still
  // serves its plain keys.
  if (missingSsh2Internals() !== undefined) return socketPath;
  installCertificateSupport();
  const agent = new ssh2.OpenSSHAgent(socketPath);
  const sign = agent.sign.bind(agent) as (key: unknown, data: Buffer, options: unknown, callback: AgentCallback<Buffer>) => void;
  Object.assign(agent, {
    getIdentities(callback: AgentCallback<ParsedKey[]>): void {
      listAgentBlobs(socketPath).then(
        (blobs) => {
          const keys = blobs.map(agentKey).filter((key): key is ParsedKey => key !== undefined);
          const certificates = keys.filter((key) => (key as unknown as Record<symbol, unknown>)[SIGNATURE_ALGORITHM] !== undefined);
          callback(null, [...certificates, ...keys.filter((key) => !certificates.includes(key))]);
        },
        (error: Error) => callback(error),
      );
    },
    sign(key: unknown, data: Buffer, options: unknown, callback: AgentCallback<Buffer>): void {
      const hash = certificateSignatureHash(key);
      if (hash === undefined) return sign(key, data, options, callback);
      // ssh2 asks the agent for an rsa-sha2 signature only for keys typed ssh-rsa; the blob stays the certificate.
      return sign(Object.create(key as object, { type: { value: "ssh-rsa" } }), data, { hash }, callback);
    },
  });
  return agent;
}
