/**
 * What the transfer suites share: a pool + executor per transport against one test sshd (optionally through
 * a fault proxy, optionally with a decorated connection), random files, hashes, and folders the test users own.
 */
import { execFileSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { chown, mkdtemp, open, readdir } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { finished } from "node:stream/promises";
import { DefaultExecutorConfig, Executor } from "@tunnel-sh/core";
import type { Connection, ExecutorConfig, Transport } from "@tunnel-sh/core";
import { ConnectionPool, DefaultPoolConfig } from "@tunnel-sh/pool";
import type { Sshd } from "@tunnel-sh/testing";
import { OpenSshTransport } from "@tunnel-sh/transport-openssh";
import { Ssh2Transport } from "@tunnel-sh/transport-ssh2";

export type TransferTransportName = "ssh2" | "openssh";
export const TRANSFER_TRANSPORTS: readonly TransferTransportName[] = ["ssh2", "openssh"];

export interface TransferStackOptions {
  /** known_hosts file to trust instead of the sshd's own (a proxy's port needs its own line). */
  readonly knownHostsPath?: string;
  /** Wraps every connection the transport makes (test-only decorators). */
  readonly wrap?: (connection: Connection) => Connection;
  readonly executorConfig?: ExecutorConfig;
}

export interface TransferStack {
  readonly pool: ConnectionPool;
  readonly executor: Executor;
  close(): Promise<void>;
}

/** Quick retries, so retry cases stay fast. */
export const transferExecutorConfig = (): ExecutorConfig =>
  DefaultExecutorConfig().with({ retryBackoff: 100, maxRetryDelay: 500, retryJitter: 0, maxRetries: 2, transferTimeout: 120_000 });

export function transferTransport(name: TransferTransportName, sshd: Sshd, options: TransferStackOptions = {}): Transport {
  const knownHosts = options.knownHostsPath ?? sshd.knownHostsPath;
  const inner: Transport =
    name === "ssh2"
      ? new Ssh2Transport({ identityFile: sshd.clientKeyPath, knownHostsFile: knownHosts, configFile: false, agent: false })
      : new OpenSshTransport({ identityFile: sshd.clientKeyPath, knownHostsFile: knownHosts, configFile: "/dev/null" });
  const wrap = options.wrap;
  if (!wrap) return inner;
  return {
    name: inner.name,
    connect: async (target, connectOptions) => wrap(await inner.connect(target, connectOptions)),
    ...(inner.identity ? { identity: (target) => inner.identity?.(target) ?? "" } : {}),
  };
}

export function transferStack(name: TransferTransportName, sshd: Sshd, options: TransferStackOptions = {}): TransferStack {
  const pool = new ConnectionPool(transferTransport(name, sshd, options), DefaultPoolConfig());
  const executor = new Executor(pool, options.executorConfig ?? transferExecutorConfig());
  return { pool, executor, close: () => pool.close() };
}

/**
 * A connection that behaves like `inner` except for the members `overrides` replaces. `closed` stays live.
 * @example decorate(connection, { upload: async (request) => { await connection.upload(request); ... } })
 */
export function decorate(inner: Connection, overrides: Partial<Pick<Connection, "upload" | "download" | "spawn">>): Connection {
  return {
    get transport() {
      return inner.transport;
    },
    get target() {
      return inner.target;
    },
    get capabilities() {
      return inner.capabilities;
    },
    get maxChannels() {
      return inner.maxChannels;
    },
    get closed() {
      return inner.closed;
    },
    spawn: overrides.spawn ?? ((request) => inner.spawn(request)),
    upload: overrides.upload ?? ((request) => inner.upload(request)),
    download: overrides.download ?? ((request) => inner.download(request)),
    ping: (options) => inner.ping(options),
    close: () => inner.close(),
    onClose: (listener) => inner.onClose(listener),
  };
}

/** Flip one byte of a file in place (the test server is this machine, so a remote file is a local one). */
export async function flipByte(path: string, offset = 0): Promise<void> {
  const file = await open(path, "r+");
  try {
    const byte = Buffer.alloc(1);
    await file.read(byte, 0, 1, offset);
    byte[0] = (byte[0] ?? 0) ^ 0xff;
    await file.write(byte, 0, 1, offset);
  } finally {
    await file.close();
  }
}

/** A private folder under the temp dir, owned by `user` (the login user of the transfers). */
export async function userFolder(user: string, prefix = "tunnel-transfer-"): Promise<string> {
  const folder = await mkdtemp(join(tmpdir(), prefix));
  const { uid, gid } = accountIds(user);
  await chown(folder, uid, gid);
  return folder;
}

export function accountIds(user: string): { uid: number; gid: number } {
  const uid = Number(execFileSync("id", ["-u", user]).toString().trim());
  const gid = Number(execFileSync("id", ["-g", user]).toString().trim());
  return { uid, gid };
}

/**
 * Write `size` random bytes to `path` without holding them in memory: a 1 MiB random block, each copy
 * salted with its index so no two MiB are alike. Returns the sha256.
 */
export async function writeRandomFile(path: string, size: number): Promise<string> {
  const hash = createHash("sha256");
  const out = createWriteStream(path);
  const block = randomBytes(Math.min(size, 1 << 20));
  for (let written = 0, index = 0; written < size; index++) {
    const chunk = Buffer.from(block.subarray(0, Math.min(block.length, size - written)));
    if (chunk.length >= 8) chunk.writeDoubleLE(index, 0);
    hash.update(chunk);
    written += chunk.length;
    if (!out.write(chunk)) await new Promise<void>((resolve) => out.once("drain", () => resolve()));
  }
  out.end();
  await finished(out);
  return hash.digest("hex");
}

export async function sha256File(path: string): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) hash.update(chunk as Buffer);
  return hash.digest("hex");
}

/** Names of tunnel temp files (`.NAME.tunnel-*.part`) anywhere under `folder`. */
export async function tempLeftovers(folder: string): Promise<string[]> {
  const names = await readdir(folder, { recursive: true });
  return names.filter((name) => /(^|\/)\.([^/]*\.)?tunnel-[0-9a-f]+\.part$/.test(name));
}
