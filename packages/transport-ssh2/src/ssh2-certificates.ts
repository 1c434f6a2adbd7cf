/**
 * OpenSSH certificates (`*-cert.pub`, PROTOCOL.certkeys) for ssh2 1.17, which has none (ssh2 issue #551): user
 * certificates presented by the client, and host certificates presented by the server. This file is the only place
 * tunnel patches ssh2.
 *
 * User certificates. ssh2's key parser drops certificate blobs; this file parses them itself and wraps the certified
 * private key in a key object whose public blob is the certificate. And `Protocol#authPK` writes one algorithm name
 * both into the request (where a certificate needs `ssh-ed25519-cert-v01@openssh.com`) and into the signature (where
 * the server expects the plain `ssh-ed25519` / `rsa-sha2-512`). `installCertificateSupport()` wraps `authPK` so that
 * for certificate keys the signed request carries the right name inside the signature; every other key goes through
 * ssh2's own code untouched. ssh2's agent client drops the certificates an ssh-agent holds for the same reason;
 * `certificateAgent()` lists the agent's identities itself and signs through ssh2's public `OpenSSHAgent`.
 *
 * Host certificates. Three pieces of ssh2's key exchange (`lib/protocol/kex.js`) stand in the way, and each is
 * changed as little as it can be, by `installHostCertificateSupport()` when this module is first evaluated:
 * - The host key algorithms a client may offer are checked against `SUPPORTED_SERVER_HOST_KEY`, an array of
 *   `lib/protocol/constants.js` that ssh2 reads by reference: the certificate algorithms are appended to it (the
 *   defaults stay as they are, so only a caller that lists them offers them; the transport does when a
 *   `@cert-authority` line names the host).
 * - The KEX reply handler requires the host key blob's type to equal the negotiated algorithm (it knows
 *   `rsa-sha2-512` → `ssh-rsa`, not `rsa-sha2-512-cert-v01@openssh.com` → `ssh-rsa-cert-v01@openssh.com`), and
 *   `finish()` then requires the exchange signature's algorithm to equal it too, while the server signs with the
 *   plain `ssh-ed25519` / `rsa-sha2-512`. An accessor for `Protocol#_kex` sees each client key exchange as ssh2
 *   creates it; when a certificate algorithm was negotiated it sets `negotiated.serverHostKey` to the certificate's
 *   blob type, and, once the reply's host key is stored (`_hostKey`, after that check and before the host
 *   verifier runs), to the plain signature algorithm. The exchange hash still covers the certificate blob.
 * - `finish()` parses the host key with `parseDERKey(blob, name)` of `lib/protocol/keyParser.js`, which knows no
 *   certificate names. kex.js takes that function when it is first loaded, so it is wrapped before: for a certificate
 *   name the wrapper parses the certified public key out of the certificate (every other name goes to ssh2's own
 *   parser). That is why the transport loads ssh2 at run time through `loadSsh2()`, after this module installed the
 *   patch, rather than with a static import. When something loaded ssh2's protocol modules first (an application
 *   importing `ssh2` before `@tunnel-sh/transport-ssh2`), host certificates stay off and
 *   `hostCertificateSupport()` says why.
 *
 * Neither patch trusts anything: the transport's host verifier receives the whole certificate blob and checks it
 * against known_hosts (`verifyHostCertificate` in known-hosts.ts) — the CA's signature, the type, the principals,
 * the validity window and `@revoked` — and the key the certificate certifies is the key the exchange signature is
 * verified with. Both refuse to install, with a message naming what changed, when the ssh2 internals they rely on
 * are not there; `missingSsh2Internals()` checks all of them and test/ssh2-certificates.test.ts calls it, so an ssh2
 * upgrade that breaks a patch fails the tests.
 */
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { connect } from "node:net";
import { CERTIFIED_KEY_TYPES, SshReader, parseSshCertificateBlob, sshString, type SshCertificate } from "@tunnel-sh/core/internal";
import type { BaseAgent, ParsedKey } from "ssh2";

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
function checkHostCertificateInternals(): string | undefined {
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

/**
 * What both patches (user and host certificates) need from ssh2's internals; a message naming the first thing
 * missing, or `undefined`.
 */
export function missingSsh2Internals(): string | undefined {
  return missingUserCertificateInternals() ?? checkHostCertificateInternals();
}

function missingUserCertificateInternals(): string | undefined {
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
    const key = loadSsh2().utils.parseKey(blob);
    return key instanceof Error ? undefined : (key as ParsedKey);
  }
  const certificate = parseSshCertificateBlob(blob);
  if (certificate instanceof Error) return undefined;
  const base = loadSsh2().utils.parseKey(certificate.publicKey);
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
  if (missingUserCertificateInternals() !== undefined) return socketPath;
  installCertificateSupport();
  const agent = new (loadSsh2().OpenSSHAgent)(socketPath);
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
