import { ConfigError, type Target } from "@tunnel-sh/core";
import type { Algorithms, Client } from "ssh2";

export type HostKeyPolicy = "strict" | "accept-new" | "insecure-accept-any";

/** Tuning of SFTP transfers: how many requests are in flight and how big each one is. */
export interface TransferOptions {
  /** Parallel SFTP read/write requests per transfer. Default 16. */
  readonly concurrency?: number;
  /** Bytes per request. Default 255 KiB (fits OpenSSH's 256 KiB SFTP packet limit). */
  readonly chunkSize?: number;
  /** Least time between two progress callbacks, in ms. The final call (at the total) is always made. Default 100. */
  readonly progressIntervalMs?: number;
  /**
   * How long the connection's SFTP session stays open after the last transfer, in ms, so back-to-back transfers
   * skip the session start. An exec that needs its channel closes it earlier. 0 closes it at once. Default 1000.
   */
  readonly sftpIdleMs?: number;
}

/**
 * Options of `new Ssh2Transport(options)`. Every member is optional; the defaults verify host keys against
 * `~/.ssh/known_hosts`, read `~/.ssh/config`, and authenticate with the ssh-agent and the default identity files.
 */
export interface Ssh2TransportOptions {
  /**
   * Login user when the target names none. Wins over ssh_config's `User`.
   * Default: ssh_config's `User`, then the local user.
   */
  readonly username?: string;
  /**
   * A private key: a path to a key file (string), or the key itself (bytes, or a string holding a PEM/OpenSSH key).
   * Wins over ssh_config's `IdentityFile` and the default identity files.
   */
  readonly privateKey?: string | Uint8Array;
  /** Passphrase of an encrypted `privateKey`. Never appears in errors, traces or logs. */
  readonly passphrase?: string;
  /** ssh-agent socket path, or `false` to not use an agent. Default: `SSH_AUTH_SOCK`. */
  readonly agent?: string | false;
  /** Password for `password` and `keyboard-interactive` authentication. Never appears in errors, traces or logs. */
  readonly password?: string;
  /** known_hosts files to trust. The first one receives `accept-new` additions. Default `~/.ssh/known_hosts`. */
  readonly knownHosts?: string | readonly string[];
  /**
   * What to do with a host key: `strict` (default) accepts only keys listed in known_hosts;
   * `accept-new` also accepts an unknown host and appends it to the first known_hosts file;
   * `insecure-accept-any` accepts any key — an explicit opt-out for throwaway test hosts only.
   * A changed or revoked key is refused under `strict` and `accept-new`.
   */
  readonly hostKeyPolicy?: HostKeyPolicy;
  /** ssh_config file to honour (HostName, User, Port, IdentityFile, ProxyJump), or `false`. Default `~/.ssh/config`. */
  readonly sshConfig?: string | false;
  /**
   * Jump hosts to connect through, first hop first: `"user@jump1:2222,jump2"` (OpenSSH's `-J` syntax) or targets.
   * Wins over ssh_config's `ProxyJump`. Each hop's host key is verified; each hop uses the same credentials.
   */
  readonly proxyJump?: string | readonly Target[];
  /** Keepalive interval in ms; 0 turns keepalives off (a black-holed link then hangs). Default 15 000. */
  readonly keepaliveInterval?: number;
  /** Unanswered keepalives before the connection is declared lost. Default 3. */
  readonly keepaliveCountMax?: number;
  /** Time allowed for TCP connect + SSH handshake + authentication, per hop, in ms. Default 20 000. */
  readonly readyTimeout?: number;
  /** Algorithm overrides, passed to ssh2 as is. */
  readonly algorithms?: Algorithms;
  /** Channels this transport lets the pool open at once on one connection. Default 10 (sshd's MaxSessions). */
  readonly maxChannels?: number;
  /** SFTP tuning. */
  readonly transfer?: TransferOptions;
  /**
   * Makes the ssh2 `Client` for each hop. A seam for tests; the transport owns and closes every client it makes.
   * Default `() => new Client()`.
   */
  readonly createClient?: () => Client;
}

/** Options after validation, with defaults applied where they need no I/O. */
export interface ResolvedOptions {
  readonly username: string | undefined;
  readonly privateKey: string | Uint8Array | undefined;
  readonly passphrase: string | undefined;
  readonly agent: string | false | undefined;
  readonly password: string | undefined;
  readonly knownHosts: readonly string[] | undefined;
  readonly hostKeyPolicy: HostKeyPolicy;
  readonly sshConfig: string | false | undefined;
  readonly proxyJump: readonly Target[] | undefined;
  readonly keepaliveInterval: number;
  readonly keepaliveCountMax: number;
  readonly readyTimeout: number;
  readonly algorithms: Algorithms | undefined;
  readonly maxChannels: number;
  readonly concurrency: number;
  readonly chunkSize: number;
  readonly progressIntervalMs: number;
  readonly sftpIdleMs: number;
  readonly createClient: (() => Client) | undefined;
}

const POLICIES: readonly HostKeyPolicy[] = ["strict", "accept-new", "insecure-accept-any"];

function integer(field: string, value: unknown, min: number, max: number, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== "number" || !Number.isInteger(value) || value < min || value > max) {
    throw new ConfigError(field, `must be an integer from ${min} to ${max}`);
  }
  return value;
}

function optionalString(field: string, value: unknown): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== "string" || value.length === 0) throw new ConfigError(field, "must be a non-empty string");
  return value;
}

/** Parse OpenSSH's `-J`/ProxyJump syntax: `[user@]host[:port]`, comma-separated. `none` means no jump. */
export function parseProxyJump(value: string, field = "proxyJump"): Target[] {
  const text = value.trim();
  if (text === "" || text.toLowerCase() === "none") return [];
  return text.split(",").map((hop) => parseHop(hop.trim(), field));
}

function parseHop(hop: string, field: string): Target {
  let rest = hop.replace(/^ssh:\/\//, "");
  let user: string | undefined;
  const at = rest.lastIndexOf("@");
  if (at >= 0) {
    user = rest.slice(0, at);
    rest = rest.slice(at + 1);
  }
  let host = rest;
  let port: number | undefined;
  const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(rest);
  if (bracketed) {
    host = bracketed[1] ?? "";
    if (bracketed[2]) port = Number(bracketed[2]);
  } else {
    const colon = rest.lastIndexOf(":");
    if (colon >= 0 && rest.indexOf(":") === colon) {
      host = rest.slice(0, colon);
      port = Number(rest.slice(colon + 1));
    }
  }
  if (host === "" || (user !== undefined && user === "")) throw new ConfigError(field, `invalid jump host "${hop}"`);
  if (port !== undefined && (!Number.isInteger(port) || port < 1 || port > 65535)) {
    throw new ConfigError(field, `invalid port in jump host "${hop}"`);
  }
  return { host, ...(port !== undefined ? { port } : {}), ...(user !== undefined ? { user } : {}) };
}

/** Check options before any I/O; every problem is a `ConfigError` naming the field. */
export function resolveOptions(options: Ssh2TransportOptions = {}): ResolvedOptions {
  if (typeof options !== "object" || options === null) throw new ConfigError("options", "must be an object");
  const username = optionalString("username", options.username);
  const privateKey = options.privateKey;
  if (privateKey !== undefined && !(typeof privateKey === "string" && privateKey.length > 0) && !(privateKey instanceof Uint8Array)) {
    throw new ConfigError("privateKey", "must be a file path or the key's bytes");
  }
  if (options.passphrase !== undefined && typeof options.passphrase !== "string") {
    throw new ConfigError("passphrase", "must be a string");
  }
  if (options.password !== undefined && typeof options.password !== "string") {
    throw new ConfigError("password", "must be a string");
  }
  if (options.agent !== undefined && options.agent !== false && (typeof options.agent !== "string" || options.agent === "")) {
    throw new ConfigError("agent", "must be a socket path or false");
  }
  let knownHosts: readonly string[] | undefined;
  if (options.knownHosts !== undefined) {
    knownHosts = typeof options.knownHosts === "string" ? [options.knownHosts] : options.knownHosts;
    if (!Array.isArray(knownHosts) || knownHosts.length === 0 || knownHosts.some((file) => typeof file !== "string" || file === "")) {
      throw new ConfigError("knownHosts", "must be a path or a non-empty list of paths");
    }
  }
  const hostKeyPolicy = options.hostKeyPolicy ?? "strict";
  if (!POLICIES.includes(hostKeyPolicy)) {
    throw new ConfigError("hostKeyPolicy", `must be one of ${POLICIES.join(", ")}`);
  }
  if (options.sshConfig !== undefined && options.sshConfig !== false && (typeof options.sshConfig !== "string" || options.sshConfig === "")) {
    throw new ConfigError("sshConfig", "must be a path or false");
  }
  let proxyJump: readonly Target[] | undefined;
  if (typeof options.proxyJump === "string") {
    proxyJump = parseProxyJump(options.proxyJump);
  } else if (options.proxyJump !== undefined) {
    if (!Array.isArray(options.proxyJump)) throw new ConfigError("proxyJump", "must be a string or a list of targets");
    proxyJump = options.proxyJump.map((hop: Target, index: number) => {
      if (typeof hop !== "object" || hop === null || typeof hop.host !== "string" || hop.host === "") {
        throw new ConfigError(`proxyJump[${index}].host`, "must be a non-empty string");
      }
      if (hop.port !== undefined) integer(`proxyJump[${index}].port`, hop.port, 1, 65535, 22);
      return hop;
    });
  }
  if (options.algorithms !== undefined && (typeof options.algorithms !== "object" || options.algorithms === null)) {
    throw new ConfigError("algorithms", "must be an object");
  }
  if (options.createClient !== undefined && typeof options.createClient !== "function") {
    throw new ConfigError("createClient", "must be a function");
  }
  const transfer = options.transfer ?? {};
  return {
    username,
    privateKey,
    passphrase: options.passphrase,
    agent: options.agent,
    password: options.password,
    knownHosts,
    hostKeyPolicy,
    sshConfig: options.sshConfig,
    proxyJump,
    keepaliveInterval: integer("keepaliveInterval", options.keepaliveInterval, 0, 3_600_000, 15_000),
    keepaliveCountMax: integer("keepaliveCountMax", options.keepaliveCountMax, 1, 1000, 3),
    readyTimeout: integer("readyTimeout", options.readyTimeout, 1, 3_600_000, 20_000),
    algorithms: options.algorithms,
    maxChannels: integer("maxChannels", options.maxChannels, 1, 1000, 10),
    concurrency: integer("transfer.concurrency", transfer.concurrency, 1, 256, 16),
    chunkSize: integer("transfer.chunkSize", transfer.chunkSize, 1024, 4 * 1024 * 1024, 255 * 1024),
    progressIntervalMs: integer("transfer.progressIntervalMs", transfer.progressIntervalMs, 0, 60_000, 100),
    sftpIdleMs: integer("transfer.sftpIdleMs", transfer.sftpIdleMs, 0, 3_600_000, 1000),
    createClient: options.createClient,
  };
}
