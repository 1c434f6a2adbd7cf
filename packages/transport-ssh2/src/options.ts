import {
  ConfigError,
  RENAMED_SSH_TRANSPORT_OPTIONS,
  SSH_TRANSPORT_OPTIONS,
  describeOptionValue,
  rejectUnknownOptions,
  resolveSshTransportOptions,
  type ResolvedSshTransportOptions,
  type SshTransportOptions,
} from "@tunnel-sh/core";
import { DEFAULT_KILL_GRACE_MS } from "@tunnel-sh/core/internal";
import type { Algorithms, Client } from "ssh2";

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
 * Options of `new Ssh2Transport(options)`: the options every tunnel SSH transport shares (`SshTransportOptions`:
 * `identityFile`, `knownHostsFile`, `hostKeyChecking`, `configFile`, `proxyJump`, ... — see core) and ssh2's own.
 * Every member is optional; the defaults verify host keys against `~/.ssh/known_hosts`, read `~/.ssh/config`, and
 * authenticate with the ssh-agent and the default identity files.
 *
 * Differences from OpenSSH in the shared options: `readyTimeout` also bounds each jump host's handshake, and every
 * hop uses the same credentials.
 */
export interface Ssh2TransportOptions extends SshTransportOptions {
  /**
   * A private key held in memory: the key's text (PEM, OpenSSH or PuTTY format) or its bytes. Tried before the
   * `identityFile`s. A key in a file is an `identityFile`.
   */
  readonly privateKey?: string | Uint8Array;
  /** Passphrase of an encrypted `privateKey` or `identityFile`. Never appears in errors, traces or logs. */
  readonly passphrase?: string;
  /** Algorithm overrides, passed to ssh2 as is. */
  readonly algorithms?: Algorithms;
  /** SFTP tuning. */
  readonly transfer?: TransferOptions;
  /**
   * After an abort sent SIGTERM, how long to wait before SIGKILL (and after SIGKILL, before giving up on the
   * channel), in ms. The same option as the OpenSSH transport's. Default 2 000 (core's `DEFAULT_KILL_GRACE_MS`).
   */
  readonly killGraceMs?: number;
  /**
   * Makes the ssh2 `Client` for each hop. A seam for tests; the transport owns and closes every client it makes.
   * Default `() => new Client()`.
   */
  readonly createClient?: () => Client;
}

/** Every option name `Ssh2Transport` accepts: the shared ones, then ssh2's own (`satisfies` keeps the list complete). */
export const SSH2_TRANSPORT_OPTIONS: readonly (keyof Ssh2TransportOptions)[] = Object.freeze([
  ...SSH_TRANSPORT_OPTIONS,
  ...(Object.keys({
    privateKey: true,
    passphrase: true,
    algorithms: true,
    transfer: true,
    killGraceMs: true,
    createClient: true,
  } satisfies Record<Exclude<keyof Ssh2TransportOptions, keyof SshTransportOptions>, true>) as (keyof Ssh2TransportOptions)[]),
]);

const TRANSFER_OPTIONS = Object.keys({
  concurrency: true,
  chunkSize: true,
  progressIntervalMs: true,
  sftpIdleMs: true,
} satisfies Record<keyof TransferOptions, true>);

/** ssh2's own `privateKey` still exists (a key in memory): only the other old names are renames here. */
const { privateKey: _inMemoryKey, ...RENAMED } = RENAMED_SSH_TRANSPORT_OPTIONS;

/** Options after validation, with defaults applied where they need no I/O. */
export interface ResolvedOptions extends ResolvedSshTransportOptions {
  readonly identitiesOnly: boolean;
  readonly privateKey: string | Uint8Array | undefined;
  readonly passphrase: string | undefined;
  readonly algorithms: Algorithms | undefined;
  readonly concurrency: number;
  readonly chunkSize: number;
  readonly progressIntervalMs: number;
  readonly sftpIdleMs: number;
  readonly killGraceMs: number;
  readonly createClient: (() => Client) | undefined;
}

function integer(field: string, value: unknown, min: number, max: number, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== "number" || !Number.isInteger(value) || value < min || value > max) {
    throw new ConfigError(field, `must be an integer from ${min} to ${max}, got ${describeOptionValue(value)}`);
  }
  return value;
}

function milliseconds(field: string, value: unknown, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== "number" || !Number.isFinite(value) || value < 0) {
    throw new ConfigError(field, `must be a non-negative number of milliseconds, got ${describeOptionValue(value)}`);
  }
  return value;
}

/** Key texts ssh2 parses: PEM and OpenSSH (`-----BEGIN ...`) and PuTTY's `.ppk`. */
const KEY_TEXT = /-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----|^PuTTY-User-Key-File-\d+:/m;

/** Check options before any I/O; every problem is a `ConfigError` naming the field, unknown and renamed ones included. */
export function resolveOptions(options: Ssh2TransportOptions = {}): ResolvedOptions {
  rejectUnknownOptions(options, SSH2_TRANSPORT_OPTIONS, "Ssh2Transport", { renamed: RENAMED });
  const shared = resolveSshTransportOptions(options);
  const privateKey: unknown = options.privateKey;
  if (privateKey !== undefined) {
    if (typeof privateKey === "string") {
      if (!KEY_TEXT.test(privateKey)) {
        throw new ConfigError("privateKey", "must hold the key itself (its PEM, OpenSSH or PuTTY text, or its bytes); give a key file's path as identityFile");
      }
    } else if (!(privateKey instanceof Uint8Array) || privateKey.length === 0) {
      throw new ConfigError("privateKey", `must be the key's text or bytes, got ${describeOptionValue(privateKey)}`);
    }
  }
  if (options.passphrase !== undefined && typeof options.passphrase !== "string") {
    throw new ConfigError("passphrase", `must be a string, got ${describeOptionValue(options.passphrase)}`);
  }
  if (options.algorithms !== undefined && (typeof options.algorithms !== "object" || options.algorithms === null)) {
    throw new ConfigError("algorithms", `must be an object, got ${describeOptionValue(options.algorithms)}`);
  }
  if (options.createClient !== undefined && typeof options.createClient !== "function") {
    throw new ConfigError("createClient", `must be a function, got ${describeOptionValue(options.createClient)}`);
  }
  rejectUnknownOptions(options.transfer, TRANSFER_OPTIONS, "Ssh2Transport", { path: "transfer" });
  const transfer = options.transfer ?? {};
  return {
    ...shared,
    identitiesOnly: shared.identitiesOnly ?? (shared.identityFiles.length > 0 || privateKey !== undefined),
    privateKey: options.privateKey,
    passphrase: options.passphrase,
    algorithms: options.algorithms,
    concurrency: integer("transfer.concurrency", transfer.concurrency, 1, 256, 16),
    chunkSize: integer("transfer.chunkSize", transfer.chunkSize, 1024, 4 * 1024 * 1024, 255 * 1024),
    progressIntervalMs: integer("transfer.progressIntervalMs", transfer.progressIntervalMs, 0, 60_000, 100),
    sftpIdleMs: integer("transfer.sftpIdleMs", transfer.sftpIdleMs, 0, 3_600_000, 1000),
    killGraceMs: milliseconds("killGraceMs", options.killGraceMs, DEFAULT_KILL_GRACE_MS),
    createClient: options.createClient,
  };
}

/** The values that must never appear in an error, a trace or a log. */
export function secretsOf(options: ResolvedOptions): readonly (string | undefined)[] {
  return [options.password, options.passphrase];
}
