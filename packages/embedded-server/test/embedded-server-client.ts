import ssh2, { type Client, type ClientChannel, type ConnectConfig, type ExecOptions } from "ssh2";
import type { TestServer } from "@tunnel-sh/embedded-server";
import { readFileSync } from "node:fs";

/** Settings that replace the defaults; `privateKey: undefined` leaves the client key out. */
export type ConnectOverrides = { [K in keyof ConnectConfig]?: ConnectConfig[K] | undefined };

/** Connect an ssh2 client to `server` with its client key (or the given auth), verifying its host key. */
export function connect(server: TestServer, config: ConnectOverrides = {}): Promise<Client> {
  return new Promise((resolve, reject) => {
    const client = new ssh2.Client();
    client.once("ready", () => resolve(client));
    // The first error rejects; later ones (a refused client's socket reset, a dropped connection) end in `close`,
    // which the tests watch.
    client.on("error", reject);
    client.connect({
      host: server.host,
      port: server.port,
      username: server.target.user,
      privateKey: readFileSync(server.clientKeyPath),
      hostVerifier: (key: Buffer) => key.toString("base64") === server.hostPublicKey.split(" ")[1],
      readyTimeout: 10_000,
      ...config,
    } as ConnectConfig);
  });
}

export interface ExecResult {
  readonly code: number | null;
  readonly signal: string | null;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Each channel's exit status, recorded from the moment it opens: ssh2 can deliver a quick command's output, exit
 * status and close in the same read as the exec's success, so `exit` fires before the caller of `open()` listens.
 */
const exits = new WeakMap<ClientChannel, { code: number | null; signal: string | null }>();

/** Open an exec channel. */
export function open(client: Client, command: string, options: ExecOptions = {}): Promise<ClientChannel> {
  return new Promise((resolve, reject) =>
    client.exec(command, options, (error, channel) => {
      if (error) return reject(error);
      channel.once("exit", (code: number | null, signal?: string) => exits.set(channel, { code, signal: signal ?? null }));
      resolve(channel);
    }),
  );
}

/** Read a channel from `open()` to its close: output and exit status. */
export function collect(channel: ClientChannel): Promise<ExecResult> {
  return new Promise((resolve) => {
    let stdout = "";
    let stderr = "";
    channel.on("data", (chunk: Buffer) => (stdout += chunk.toString("utf8")));
    channel.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString("utf8")));
    channel.on("close", () => resolve({ ...(exits.get(channel) ?? { code: null, signal: null }), stdout, stderr }));
  });
}

/** Run `command` to completion, stdin closed at once. */
export async function run(client: Client, command: string, options: ExecOptions = {}): Promise<ExecResult> {
  const channel = await open(client, command, options);
  channel.end();
  return collect(channel);
}

/** Resolves with the output so far once it contains `text`. */
export function waitForOutput(channel: ClientChannel, text: string, ms = 10_000): Promise<string> {
  return new Promise((resolve, reject) => {
    let seen = "";
    const timer = setTimeout(() => reject(new Error(`no "${text}" within ${ms} ms: ${JSON.stringify(seen)}`)), ms);
    channel.on("data", (chunk: Buffer) => {
      seen += chunk.toString("utf8");
      if (seen.includes(text)) {
        clearTimeout(timer);
        resolve(seen);
      }
    });
  });
}

/** Resolves once the client's connection has closed. */
export function closed(client: Client): Promise<void> {
  return new Promise((resolve) => client.once("close", () => resolve()));
}

/** A fresh ed25519 key pair (ssh2's generator makes an unusable one about once in 256 tries: skip those). */
export function generateKey(): { private: string; public: string } {
  for (;;) {
    const pair = ssh2.utils.generateKeyPairSync("ed25519");
    const parsed = ssh2.utils.parseKey(pair.public);
    if (!(parsed instanceof Error) && parsed.getPublicSSH().length === 51 && !(ssh2.utils.parseKey(pair.private) instanceof Error)) return pair;
  }
}

/** The OpenSSH client options (`ssh`, `sftp`) that log in to `server` with its client key, checking its host key strictly. */
export function opensshOptions(server: TestServer): string[] {
  return [
    "-F",
    "/dev/null",
    "-i",
    server.clientKeyPath,
    "-o",
    "IdentitiesOnly=yes",
    "-o",
    "BatchMode=yes",
    "-o",
    "StrictHostKeyChecking=yes",
    "-o",
    `UserKnownHostsFile=${server.knownHostsPath}`,
    "-o",
    "GlobalKnownHostsFile=/dev/null",
  ];
}
