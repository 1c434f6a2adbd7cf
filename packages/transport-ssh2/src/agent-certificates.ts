/** ssh-agent identities with their certificates, which ssh2's own agent client drops. */
import { connect } from "node:net";
import { SshReader, parseSshCertificateBlob } from "@tunnel-sh/core/internal";
import type { BaseAgent, ParsedKey } from "ssh2";
import { loadSsh2 } from "./host-certificate-patch.js";
import {
  SIGNATURE_ALGORITHM,
  certificateKey,
  certificateSignatureHash,
  installCertificateSupport,
  missingUserCertificateInternals,
} from "./user-certificate-patch.js";

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
