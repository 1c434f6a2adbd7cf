/**
 * Options of `OpenSshTransport`, their validation (a `ConfigError` before any I/O) and the ssh arguments they become.
 */
import { ConfigError, ValidationError, type Target } from "@tunnel-sh/core";

/** How the server's host key is checked against known_hosts. */
export type HostKeyChecking =
  /** Only keys already in known_hosts are accepted (`StrictHostKeyChecking=yes`). The default. */
  | "strict"
  /** Unknown hosts are added on first use, changed keys are refused (`StrictHostKeyChecking=accept-new`). */
  | "accept-new"
  /** Any key is accepted and nothing is recorded (`StrictHostKeyChecking=no`, `UserKnownHostsFile=/dev/null`). An explicit opt-out. */
  | "insecure-accept-any";

export interface OpenSshTransportOptions {
  /** The ssh client binary. Default `"ssh"` (found on PATH). */
  readonly sshPath?: string;
  /** An extra ssh_config file (`-F`); replaces `~/.ssh/config` for these connections, as `-F` does. */
  readonly configFile?: string;
  /** Private key file(s) (`-i`). With them, `IdentitiesOnly=yes` unless `identitiesOnly` is false. */
  readonly identityFile?: string | readonly string[];
  /** Offer only the given identity files, not every agent key. Default: true when `identityFile` is set. */
  readonly identitiesOnly?: boolean;
  /** known_hosts file(s) (`UserKnownHostsFile`). Default: ssh's own (`~/.ssh/known_hosts`). */
  readonly knownHostsFile?: string | readonly string[];
  /** Default `"strict"`. */
  readonly hostKeyChecking?: HostKeyChecking;
  /**
   * Password for password / keyboard-interactive authentication, answered by a private `SSH_ASKPASS` helper.
   * It never appears on a command line: it sits in a 0600 file inside a 0700 folder only while the master connects.
   */
  readonly password?: string;
  /** TCP connect timeout in ms (`ConnectTimeout`, rounded up to seconds). Default 10 000. */
  readonly connectTimeout?: number;
  /** Deadline for the whole connect (TCP, key exchange, authentication) in ms. Default `connectTimeout` + 20 000. */
  readonly readyTimeout?: number;
  /** Keepalive interval in ms (`ServerAliveInterval`, rounded up to seconds); 0 disables. Default 15 000. */
  readonly keepaliveInterval?: number;
  /** Unanswered keepalives before the connection counts as lost (`ServerAliveCountMax`). Default 3. */
  readonly keepaliveCountMax?: number;
  /** Channels allowed at once per connection (match the server's MaxSessions). Default 10. */
  readonly maxChannels?: number;
  /** After an abort sent SIGTERM, how long to wait before SIGKILL, in ms. Default 2 000. */
  readonly killGraceMs?: number;
  /**
   * Tell `exit 128+N` from a death by signal N exactly, through `perl` on the host when it has one (default true).
   * `false` skips perl and lets the login shell wait, which saves one process start per exec but reports an exit
   * status of 129–192 as the signal `kill -l` names (see the README).
   */
  readonly exactExitStatus?: boolean;
  /** Extra `-o Key=Value` options. Keys that would break how tunnel drives ssh are refused (see the README). */
  readonly options?: Readonly<Record<string, string | number | boolean>>;
  /** Where the private per-connection folders go. Default `os.tmpdir()`. */
  readonly tempDir?: string;
  /** Extra environment for the ssh processes (e.g. `SSH_AUTH_SOCK`). Default: this process's environment. */
  readonly env?: Readonly<Record<string, string>>;
}

export interface ResolvedOptions {
  readonly sshPath: string;
  readonly configFile: string | undefined;
  readonly identityFiles: readonly string[];
  readonly identitiesOnly: boolean;
  readonly knownHostsFiles: readonly string[];
  readonly hostKeyChecking: HostKeyChecking;
  readonly password: string | undefined;
  readonly connectTimeoutMs: number;
  readonly readyTimeoutMs: number;
  readonly keepaliveIntervalMs: number;
  readonly keepaliveCountMax: number;
  readonly maxChannels: number;
  readonly killGraceMs: number;
  readonly exactExitStatus: boolean;
  readonly extraOptions: readonly (readonly [string, string])[];
  readonly tempDir: string | undefined;
  readonly env: Readonly<Record<string, string>> | undefined;
}

/**
 * Options tunnel sets itself, or that would make ssh bypass the master, prompt, run local commands or hide its errors.
 * Lower-case, as ssh compares keywords case-insensitively.
 */
const reservedOptions = new Map<string, string>([
  ["controlpath", "tunnel manages the control socket"],
  ["controlmaster", "tunnel manages the ControlMaster"],
  ["controlpersist", "tunnel manages the ControlMaster's lifetime"],
  ["batchmode", "tunnel never lets ssh prompt"],
  ["stricthostkeychecking", "use the hostKeyChecking option"],
  ["userknownhostsfile", "use the knownHostsFile option"],
  ["globalknownhostsfile", "use the knownHostsFile option"],
  ["identityfile", "use the identityFile option"],
  ["identitiesonly", "use the identitiesOnly option"],
  ["serveraliveinterval", "use the keepaliveInterval option"],
  ["serveralivecountmax", "use the keepaliveCountMax option"],
  ["connecttimeout", "use the connectTimeout option"],
  ["proxycommand", "put ProxyCommand in a configFile (or use ProxyJump)"],
  ["localcommand", "local commands are not run"],
  ["permitlocalcommand", "local commands are not run"],
  ["knownhostscommand", "local commands are not run"],
  ["remotecommand", "tunnel sends the command"],
  ["requesttty", "use SpawnRequest.pty"],
  ["sessiontype", "tunnel chooses the session type"],
  ["stdinnull", "tunnel manages stdin"],
  ["forkafterauthentication", "tunnel keeps the master in the foreground"],
  ["loglevel", "tunnel reads ssh's error messages"],
  ["escapechar", "tunnel sets no escape character"],
  ["numberofpasswordprompts", "use the password option"],
]);

const keyPattern = /^[A-Za-z][A-Za-z0-9]*$/;
/** No whitespace, quotes, `#`, `$`, backslash or control characters: ssh's config tokenizer would reinterpret them. */
const valuePattern = /^[A-Za-z0-9_.,:@%+=/~\-[\]*!^]+$/;
const signalNames = /^[A-Z0-9]+$/;

function list(value: string | readonly string[] | undefined): readonly string[] {
  if (value === undefined) return [];
  return typeof value === "string" ? [value] : value;
}

function path(field: string, value: string): string {
  if (typeof value !== "string" || value.length === 0) throw new ConfigError(field, "must be a non-empty path");
  if (/[\0\r\n]/.test(value)) throw new ConfigError(field, "must not contain NUL or line breaks");
  return value;
}

function positiveMs(field: string, value: number | undefined, fallback: number, allowZero = false): number {
  if (value === undefined) return fallback;
  if (typeof value !== "number" || !Number.isFinite(value) || value < 0 || (!allowZero && value === 0)) {
    throw new ConfigError(field, `must be a ${allowZero ? "non-negative" : "positive"} number of milliseconds`);
  }
  return value;
}

/** Validate every option; throws `ConfigError` naming the field. Does no I/O. */
export function resolveOptions(options: OpenSshTransportOptions = {}): ResolvedOptions {
  if (typeof options !== "object" || options === null) throw new ConfigError("options", "must be an object");
  const sshPath = options.sshPath === undefined ? "ssh" : path("sshPath", options.sshPath);
  const configFile = options.configFile === undefined ? undefined : path("configFile", options.configFile);
  const identityFiles = list(options.identityFile).map((file) => path("identityFile", file));
  const knownHostsFiles = list(options.knownHostsFile).map((file) => path("knownHostsFile", file));
  for (const file of knownHostsFiles) {
    if (/\s/.test(file)) throw new ConfigError("knownHostsFile", "paths with whitespace are not supported by UserKnownHostsFile");
  }
  const hostKeyChecking = options.hostKeyChecking ?? "strict";
  if (!["strict", "accept-new", "insecure-accept-any"].includes(hostKeyChecking)) {
    throw new ConfigError("hostKeyChecking", 'must be "strict", "accept-new" or "insecure-accept-any"');
  }
  if (hostKeyChecking === "insecure-accept-any" && knownHostsFiles.length > 0) {
    throw new ConfigError("knownHostsFile", 'is ignored with hostKeyChecking "insecure-accept-any"; remove one of them');
  }
  if (options.password !== undefined) {
    if (typeof options.password !== "string" || options.password.length === 0) {
      throw new ConfigError("password", "must be a non-empty string");
    }
    // ssh reads one line from the askpass helper.
    if (/[\0\r\n]/.test(options.password)) throw new ConfigError("password", "must not contain NUL or line breaks");
  }
  const connectTimeoutMs = positiveMs("connectTimeout", options.connectTimeout, 10_000);
  const readyTimeoutMs = positiveMs("readyTimeout", options.readyTimeout, connectTimeoutMs + 20_000);
  const keepaliveIntervalMs = positiveMs("keepaliveInterval", options.keepaliveInterval, 15_000, true);
  const keepaliveCountMax = options.keepaliveCountMax ?? 3;
  if (!Number.isInteger(keepaliveCountMax) || keepaliveCountMax < 1) {
    throw new ConfigError("keepaliveCountMax", "must be a positive integer");
  }
  const maxChannels = options.maxChannels ?? 10;
  if (!Number.isInteger(maxChannels) || maxChannels < 1 || maxChannels > 1000) {
    throw new ConfigError("maxChannels", "must be an integer from 1 to 1000");
  }
  const killGraceMs = positiveMs("killGraceMs", options.killGraceMs, 2_000, true);
  const exactExitStatus = options.exactExitStatus ?? true;
  if (typeof exactExitStatus !== "boolean") throw new ConfigError("exactExitStatus", "must be a boolean");
  const extraOptions: Array<readonly [string, string]> = [];
  for (const [key, raw] of Object.entries(options.options ?? {})) {
    const field = `options.${key}`;
    if (!keyPattern.test(key)) throw new ConfigError(field, "is not an ssh option keyword");
    const reason = reservedOptions.get(key.toLowerCase());
    if (reason) throw new ConfigError(field, `cannot be set here: ${reason}`);
    const value = typeof raw === "boolean" ? (raw ? "yes" : "no") : String(raw);
    if (!valuePattern.test(value)) {
      throw new ConfigError(field, "has characters ssh would reinterpret (whitespace, quotes, #, $, \\); put it in a configFile");
    }
    extraOptions.push([key, value]);
  }
  const tempDir = options.tempDir === undefined ? undefined : path("tempDir", options.tempDir);
  const env = options.env;
  if (env !== undefined) {
    for (const [name, value] of Object.entries(env)) {
      if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name) || typeof value !== "string") {
        throw new ConfigError(`env.${name}`, "must be a valid variable name with a string value");
      }
    }
  }
  return {
    sshPath,
    configFile,
    identityFiles,
    identitiesOnly: options.identitiesOnly ?? identityFiles.length > 0,
    knownHostsFiles,
    hostKeyChecking,
    password: options.password,
    connectTimeoutMs,
    readyTimeoutMs,
    keepaliveIntervalMs,
    keepaliveCountMax,
    maxChannels,
    killGraceMs,
    exactExitStatus,
    extraOptions,
    tempDir,
    env,
  };
}

/** Validate a target before any I/O: ssh must never read a host or user as an option. */
export function validateTarget(target: Target): Target {
  if (typeof target !== "object" || target === null) throw new ValidationError("target", "must be an object");
  const { host, port, user } = target;
  if (typeof host !== "string" || host.length === 0 || host.startsWith("-") || /[\s\0'"`$\\;|&<>()]/.test(host)) {
    throw new ValidationError("host", "must be a host name, an address or an ssh_config alias");
  }
  if (port !== undefined && (!Number.isInteger(port) || port < 1 || port > 65_535)) {
    throw new ValidationError("port", "must be an integer from 1 to 65535");
  }
  if (user !== undefined && (typeof user !== "string" || user.length === 0 || user.startsWith("-") || /[\s\0@'"`$\\;|&<>()]/.test(user))) {
    throw new ValidationError("user", "must be a plain user name");
  }
  return target;
}

/** `"TERM"`, `"SIGTERM"` → `"TERM"`; anything else is a `ValidationError`. */
export function signalName(signal: string): string {
  const name = signal.toUpperCase().replace(/^SIG/, "");
  if (!signalNames.test(name) || name.length > 10) throw new ValidationError("signal", `unknown signal ${JSON.stringify(signal)}`);
  return name;
}

const seconds = (ms: number) => String(Math.max(1, Math.ceil(ms / 1000)));

/** `-o` options shared by the master and every client: never prompt, check host keys as asked. */
export function commonArgs(options: ResolvedOptions, target: Target): string[] {
  const args: string[] = [];
  if (options.configFile !== undefined) args.push("-F", options.configFile);
  if (target.port !== undefined) args.push("-p", String(target.port));
  if (target.user !== undefined) args.push("-l", target.user);
  return args;
}

/** Arguments of the ControlMaster (`ssh -M -N`), before the host. */
export function masterArgs(options: ResolvedOptions, target: Target, socketPath: string): string[] {
  const args = ["-M", "-N", "-S", escapePercent(socketPath), "-o", "ControlPersist=no", ...commonArgs(options, target)];
  // With a password ssh must ask for it — through the private askpass helper, never a terminal.
  args.push("-o", `BatchMode=${options.password === undefined ? "yes" : "no"}`);
  if (options.password !== undefined) args.push("-o", "NumberOfPasswordPrompts=1");
  args.push("-o", `ConnectTimeout=${seconds(options.connectTimeoutMs)}`);
  if (options.keepaliveIntervalMs > 0) {
    args.push("-o", `ServerAliveInterval=${seconds(options.keepaliveIntervalMs)}`);
    args.push("-o", `ServerAliveCountMax=${options.keepaliveCountMax}`);
  } else {
    args.push("-o", "ServerAliveInterval=0");
  }
  switch (options.hostKeyChecking) {
    case "strict":
      args.push("-o", "StrictHostKeyChecking=yes");
      break;
    case "accept-new":
      args.push("-o", "StrictHostKeyChecking=accept-new");
      break;
    case "insecure-accept-any":
      args.push("-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "GlobalKnownHostsFile=/dev/null");
      break;
  }
  if (options.knownHostsFiles.length > 0) {
    args.push("-o", `UserKnownHostsFile=${options.knownHostsFiles.join(" ")}`);
  }
  for (const file of options.identityFiles) args.push("-i", file);
  if (options.identitiesOnly) args.push("-o", "IdentitiesOnly=yes");
  // LogLevel ERROR keeps "Warning: Permanently added" and similar chatter out of the error messages.
  args.push("-o", "LogLevel=ERROR", "-o", "EscapeChar=none");
  for (const [key, value] of options.extraOptions) args.push("-o", `${key}=${value}`);
  return args;
}

/**
 * Arguments every client of the master uses. `ControlMaster=no` + `ProxyCommand=/bin/false`: when the master is gone
 * or refuses a session, ssh would silently open a new direct connection; with these it fails fast instead
 * (the mux client never reaches the ProxyCommand while the master answers).
 */
export function clientArgs(options: ResolvedOptions, target: Target, socketPath: string): string[] {
  return [
    "-S",
    escapePercent(socketPath),
    "-o",
    "ControlMaster=no",
    "-o",
    "ProxyCommand=/bin/false",
    "-o",
    "BatchMode=yes",
    "-o",
    "LogLevel=ERROR",
    "-o",
    "EscapeChar=none",
    ...commonArgs(options, target),
  ];
}

/** ssh expands `%` tokens in the control path. */
function escapePercent(value: string): string {
  return value.replace(/%/g, "%%");
}
