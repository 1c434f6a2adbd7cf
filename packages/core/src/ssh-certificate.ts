/**
 * OpenSSH certificates (PROTOCOL.certkeys): parsing a `*-cert.pub` and the local checks both SSH transports use to
 * explain a refused login (the server never says why it refused a certificate).
 *
 * @example
 * const certificate = parseSshCertificate(readFileSync("id_ed25519-cert.pub", "utf8"));
 * if (!(certificate instanceof Error)) sshCertificateProblem(certificate, "deploy"); // "certificate "ci" expired at ..."
 */
/** A parsed OpenSSH certificate (the fields tunnel needs). */
export interface SshCertificate {
  /** `ssh-ed25519-cert-v01@openssh.com`, `ssh-rsa-cert-v01@openssh.com`, ... */
  readonly type: string;
  /** The whole certificate blob, as sent to the server. */
  readonly blob: Buffer;
  /** The public blob of the key it certifies (`ssh-ed25519 ...`). */
  readonly publicKey: Buffer;
  /** `"user"` (1) or `"host"` (2). */
  readonly kind: "user" | "host";
  readonly keyId: string;
  /** Empty means valid for every principal. */
  readonly principals: readonly string[];
  /** Seconds since the epoch; `validBefore` is `2^64-1` for "forever". */
  readonly validAfter: bigint;
  readonly validBefore: bigint;
  /** The CA's public key blob. */
  readonly signatureKey: Buffer;
  /** The bytes the CA signed (everything before the signature) and the signature blob. */
  readonly signedData: Buffer;
  readonly signature: Buffer;
}

/** Certificate types tunnel reads, and the key type each certifies. */
export const CERTIFIED_KEY_TYPES: Readonly<Record<string, string>> = {
  "ssh-ed25519-cert-v01@openssh.com": "ssh-ed25519",
  "ssh-rsa-cert-v01@openssh.com": "ssh-rsa",
  "ecdsa-sha2-nistp256-cert-v01@openssh.com": "ecdsa-sha2-nistp256",
  "ecdsa-sha2-nistp384-cert-v01@openssh.com": "ecdsa-sha2-nistp384",
  "ecdsa-sha2-nistp521-cert-v01@openssh.com": "ecdsa-sha2-nistp521",
};

/** Reads SSH wire types (RFC 4251) from a buffer; throws on truncated input. */
export class SshReader {
  private offset = 0;
  constructor(private readonly buffer: Buffer) {}
  get position(): number {
    return this.offset;
  }
  get done(): boolean {
    return this.offset >= this.buffer.length;
  }
  string(): Buffer {
    const length = this.uint32();
    if (this.offset + length > this.buffer.length) throw new Error("truncated certificate");
    const value = this.buffer.subarray(this.offset, this.offset + length);
    this.offset += length;
    return value;
  }
  text(): string {
    return this.string().toString("utf8");
  }
  uint32(): number {
    if (this.offset + 4 > this.buffer.length) throw new Error("truncated certificate");
    const value = this.buffer.readUInt32BE(this.offset);
    this.offset += 4;
    return value;
  }
  uint64(): bigint {
    if (this.offset + 8 > this.buffer.length) throw new Error("truncated certificate");
    const value = this.buffer.readBigUInt64BE(this.offset);
    this.offset += 8;
    return value;
  }
}

export function sshString(value: Buffer | string): Buffer {
  const bytes = typeof value === "string" ? Buffer.from(value, "utf8") : value;
  const length = Buffer.alloc(4);
  length.writeUInt32BE(bytes.length);
  return Buffer.concat([length, bytes]);
}

/** Parse a certificate blob; an `Error` says why it is not one tunnel can use. */
export function parseSshCertificateBlob(blob: Buffer): SshCertificate | Error {
  try {
    const reader = new SshReader(blob);
    const type = reader.text();
    const certified = CERTIFIED_KEY_TYPES[type];
    if (certified === undefined) return new Error(`unsupported certificate type ${type}`);
    reader.string(); // nonce
    let publicKey: Buffer;
    if (certified === "ssh-ed25519") publicKey = Buffer.concat([sshString(certified), sshString(reader.string())]);
    else if (certified === "ssh-rsa") {
      const exponent = reader.string();
      const modulus = reader.string();
      publicKey = Buffer.concat([sshString(certified), sshString(exponent), sshString(modulus)]);
    } else {
      const curve = reader.string();
      const point = reader.string();
      publicKey = Buffer.concat([sshString(certified), sshString(curve), sshString(point)]);
    }
    reader.uint64(); // serial
    const kindNumber = reader.uint32();
    const keyId = reader.text();
    const principalsReader = new SshReader(reader.string());
    const principals: string[] = [];
    while (!principalsReader.done) principals.push(principalsReader.text());
    const validAfter = reader.uint64();
    const validBefore = reader.uint64();
    reader.string(); // critical options
    reader.string(); // extensions
    reader.string(); // reserved
    const signatureKey = reader.string();
    const signedData = blob.subarray(0, reader.position);
    const signature = reader.string();
    return {
      type,
      blob,
      publicKey,
      kind: kindNumber === 2 ? "host" : "user",
      keyId,
      principals,
      validAfter,
      validBefore,
      signatureKey,
      signedData,
      signature,
    };
  } catch (error) {
    return error as Error;
  }
}

/** Read a `-cert.pub` file's text (`<type> <base64> [comment]`). */
export function parseSshCertificate(text: string): SshCertificate | Error {
  const [type, data] = text.trim().split(/\s+/);
  if (type === undefined || data === undefined || !type.endsWith("-cert-v01@openssh.com")) return new Error("not an OpenSSH certificate");
  const certificate = parseSshCertificateBlob(Buffer.from(data, "base64"));
  if (!(certificate instanceof Error) && certificate.type !== type) return new Error("the certificate's type does not match its blob");
  return certificate;
}

/** Why `certificate` cannot let `user` in at `now`, or `undefined` when its validity and principals allow it. */
export function sshCertificateProblem(certificate: SshCertificate, user: string, now = new Date()): string | undefined {
  const seconds = BigInt(Math.floor(now.getTime() / 1000));
  const when = (value: bigint) => (value >= 0xffff_ffff_ffff_ffffn ? "forever" : new Date(Number(value) * 1000).toISOString());
  if (certificate.kind !== "user") return `certificate "${certificate.keyId}" is a host certificate, not a user certificate`;
  if (seconds < certificate.validAfter) return `certificate "${certificate.keyId}" is not valid before ${when(certificate.validAfter)}`;
  if (seconds >= certificate.validBefore) return `certificate "${certificate.keyId}" expired at ${when(certificate.validBefore)}`;
  if (certificate.principals.length > 0 && !certificate.principals.includes(user)) {
    return `certificate "${certificate.keyId}" is for ${certificate.principals.map((name) => `"${name}"`).join(", ")}, not the login user "${user}"`;
  }
  return undefined;
}
