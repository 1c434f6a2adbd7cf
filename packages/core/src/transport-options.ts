/**
 * The options every SSH transport accepts under the same names (`@tunnel-sh/transport-ssh2`,
 * `@tunnel-sh/transport-openssh`), named after the OpenSSH settings they stand for, and their validation.
 * Each transport extends `SshTransportOptions` with its own extras (ssh2's `createClient`, openssh's `sshPath`, ...).
 *
 * @example
 * const shared: SshTransportOptions = { identityFile: "/etc/tunnel/id_ed25519", knownHostsFile: "/etc/tunnel/known_hosts" };
 * new Ssh2Transport(shared); new OpenSshTransport(shared); // the same meaning on both
 */
import { ConfigError } from "./errors.js";
import { describeOptionValue } from "./options.js";
import type { Target } from "./types.js";

/**
 * How the server's host key is checked against known_hosts (OpenSSH's `StrictHostKeyChecking`).
 * - `"strict"`: only keys already listed are accepted (`StrictHostKeyChecking=yes`). The default.
 * - `"accept-new"`: an unknown host is accepted and recorded in the first known_hosts file; a changed or revoked key
 *   is still refused (`StrictHostKeyChecking=accept-new`).
 * - `"insecure-accept-any"`: any key is accepted and nothing is recorded. An explicit opt-out for throwaway hosts.
 */
export type HostKeyChecking = "strict" | "accept-new" | "insecure-accept-any";

/** One prompt of a keyboard-interactive round (RFC 4256). */
export interface KeyboardInteractivePrompt {
  /** The prompt text as the server sent it, e.g. `"Verification code: "` or `"Password: "`. */
  readonly prompt: string;
  /** Whether the answer may be shown while it is typed (false for passwords and codes). */
  readonly echo: boolean;
}

/** A keyboard-interactive round the server asks, handed to `onKeyboardInteractive`. */
export interface KeyboardInteractiveRequest {
  /** The host being logged in to (a jump host or the destination) and the login user. */
  readonly target: Target;
  /** The round's name and instructions from the server; often empty. */
  readonly name: string;
  readonly instructions: string;
  /** One or more prompts; the answer MUST hold one string per prompt, in order. */
  readonly prompts: readonly KeyboardInteractivePrompt[];
  /**
   * Aborts when the connect is aborted or its `readyTimeout` runs out: stop asking and return (or throw) at once.
   */
  readonly signal: AbortSignal;
}

/**
 * Answers keyboard-interactive prompts: second factors after a key (`AuthenticationMethods
 * publickey,keyboard-interactive`), one-time codes, PAM questions. The answers are secrets: transports never put
 * them on a command line, in an environment, an error, a trace or a log. A rejected promise or a wrong count of
 * answers fails the login with an `AuthenticationError`.
 * @example
 * onKeyboardInteractive: async ({ prompts, signal }) => Promise.all(prompts.map((p) => askTerminal(p.prompt, { echo: p.echo, signal })))
 */
export type KeyboardInteractiveHandler = (request: KeyboardInteractiveRequest) => Promise<readonly string[]> | readonly string[];

/** Options with the same name and meaning on every SSH transport. Every member is optional. */
export interface SshTransportOptions {
  /**
   * Login user when the target names none (OpenSSH's `User`). The target's `user` wins; then this; then ssh_config's
   * `User`; then the local user.
   */
  readonly user?: string;
  /**
   * Private key file(s) to authenticate with, tried in order (OpenSSH's `IdentityFile`, `-i`). Replace ssh_config's
   * `IdentityFile` and the default `~/.ssh/id_*` files. An unreadable file is a `ConfigError` at connect, before any
   * socket is opened.
   * @example "/etc/tunnel/id_ed25519"
   */
  readonly identityFile?: string | readonly string[];
  /**
   * OpenSSH user certificate file(s) (`*-cert.pub`) to present with the identities (OpenSSH's `CertificateFile`).
   * Each is used with the private key it certifies. Without it, a `<identity>-cert.pub` beside each identity file is
   * used, as OpenSSH does, and ssh_config's `CertificateFile` applies. An unreadable file is a `ConfigError`.
   * @example "/run/vault/id_ed25519-cert.pub"
   */
  readonly certificateFile?: string | readonly string[];
  /**
   * Offer only the given identities, not every key the agent holds (OpenSSH's `IdentitiesOnly`).
   * Default: `true` when `identityFile` is set, else `false`.
   */
  readonly identitiesOnly?: boolean;
  /**
   * The ssh-agent socket (OpenSSH's `IdentityAgent`), or `false` to use no agent.
   * Default: the `SSH_AUTH_SOCK` environment variable.
   */
  readonly agent?: string | false;
  /**
   * Forward the ssh-agent (`agent`, else `SSH_AUTH_SOCK`) to the server for every command of the connection
   * (OpenSSH's `ForwardAgent`), so a `git clone` there can use the caller's keys. Default: ssh_config's
   * `ForwardAgent`, else `false`. The agent's socket path never appears in traces.
   */
  readonly forwardAgent?: boolean;
  /**
   * Password for `password` and `keyboard-interactive` authentication. It never appears on a command line, in an
   * environment, an error, a trace or a log.
   */
  readonly password?: string;
  /**
   * Answers keyboard-interactive prompts (OpenSSH's `KbdInteractiveAuthentication`), e.g. a second factor after the
   * key. With it every keyboard-interactive round goes to the callback; without it, `password` answers the first
   * round and keyboard-interactive is otherwise not tried.
   */
  readonly onKeyboardInteractive?: KeyboardInteractiveHandler;
  /**
   * known_hosts file(s) to check host keys against (OpenSSH's `UserKnownHostsFile`). `"accept-new"` records new hosts
   * in the first one. Default `~/.ssh/known_hosts`.
   */
  readonly knownHostsFile?: string | readonly string[];
  /** How host keys are checked (OpenSSH's `StrictHostKeyChecking`). Default `"strict"`. */
  readonly hostKeyChecking?: HostKeyChecking;
  /**
   * The ssh_config file to honour (OpenSSH's `-F`), or `false` to read none. Default: the user's `~/.ssh/config`.
   */
  readonly configFile?: string | false;
  /**
   * Jump hosts to connect through, first hop first (OpenSSH's `ProxyJump`, `-J`): `"user@jump1:2222,jump2"` or a list
   * of targets. `"none"` or an empty list connects directly. Wins over ssh_config's `ProxyJump`.
   */
  readonly proxyJump?: string | readonly Target[];
  /** Time allowed for the TCP connect, in ms (OpenSSH's `ConnectTimeout`). Default 10 000. */
  readonly connectTimeout?: number;
  /**
   * Time allowed for the whole connect — TCP, key exchange, authentication, every jump host — in ms.
   * Default `connectTimeout` + 20 000.
   */
  readonly readyTimeout?: number;
  /**
   * Interval between keepalives while the server is silent, in ms (OpenSSH's `ServerAliveInterval`); 0 turns them off
   * (a black-holed link then hangs). Default 15 000.
   */
  readonly keepaliveInterval?: number;
  /** Unanswered keepalives before the connection counts as lost (OpenSSH's `ServerAliveCountMax`). Default 3. */
  readonly keepaliveCountMax?: number;
  /**
   * Channels (commands, transfers) the pool may open at once on one connection. Match the servers' `MaxSessions`.
   * Default 10.
   */
  readonly maxChannels?: number;
}

/**
 * The names of `SshTransportOptions`, in the order the shared options table lists them. (`satisfies` makes the
 * compiler refuse a list that misses a member.)
 */
export const SSH_TRANSPORT_OPTIONS: readonly (keyof SshTransportOptions)[] = Object.freeze(
  Object.keys({
    user: true,
    identityFile: true,
    certificateFile: true,
    identitiesOnly: true,
    agent: true,
    forwardAgent: true,
    password: true,
    onKeyboardInteractive: true,
    knownHostsFile: true,
    hostKeyChecking: true,
    configFile: true,
    proxyJump: true,
    connectTimeout: true,
    readyTimeout: true,
    keepaliveInterval: true,
    keepaliveCountMax: true,
    maxChannels: true,
  } satisfies Record<keyof SshTransportOptions, true>) as (keyof SshTransportOptions)[],
);

/**
 * Names earlier releases used for shared options, old → new. Transports refuse them with a `ConfigError` that says the
 * new name (pass this as `renamed` to `rejectUnknownOptions`).
 */
export const RENAMED_SSH_TRANSPORT_OPTIONS: Readonly<Record<string, keyof SshTransportOptions>> = Object.freeze({
  username: "user",
  privateKey: "identityFile",
  knownHosts: "knownHostsFile",
  hostKeyPolicy: "hostKeyChecking",
  sshConfig: "configFile",
});

/** `SshTransportOptions` after validation, defaults applied where they need no I/O. */
export interface ResolvedSshTransportOptions {
  readonly user: string | undefined;
  readonly identityFiles: readonly string[];
  /** Empty when not given (certificates beside the identities and ssh_config's apply). */
  readonly certificateFiles: readonly string[];
  /** `undefined` when not given: each transport applies the default with the identities it knows. */
  readonly identitiesOnly: boolean | undefined;
  readonly agent: string | false | undefined;
  /** `undefined` when not given (ssh_config's `ForwardAgent` decides, else off). */
  readonly forwardAgent: boolean | undefined;
  readonly password: string | undefined;
  readonly onKeyboardInteractive: KeyboardInteractiveHandler | undefined;
  /** Empty when not given (the transport's default file applies). */
  readonly knownHostsFiles: readonly string[];
  readonly hostKeyChecking: HostKeyChecking;
  readonly configFile: string | false | undefined;
  /** `undefined` when not given (ssh_config decides); `[]` for an explicit direct connection. */
  readonly proxyJump: readonly Target[] | undefined;
  readonly connectTimeout: number;
  readonly readyTimeout: number;
  readonly keepaliveInterval: number;
  readonly keepaliveCountMax: number;
  readonly maxChannels: number;
}

const HOST_KEY_CHECKING: readonly HostKeyChecking[] = ["strict", "accept-new", "insecure-accept-any"];
const MAX_MS = 3_600_000;
const LOGIN_USER_FORBIDDEN = /[\s\0@'"`$\\;|&<>()]/;

function path(field: string, value: unknown): string {
  if (typeof value !== "string" || value.length === 0) {
    throw new ConfigError(field, `must be a path (a non-empty string), got ${typeof value === "string" ? "an empty string" : describeOptionValue(value)}`);
  }
  if (/[\0\r\n]/.test(value)) throw new ConfigError(field, "must not contain NUL or line breaks");
  return value;
}

function paths(field: string, value: unknown): readonly string[] {
  if (value === undefined) return [];
  if (typeof value === "string") return [path(field, value)];
  if (!Array.isArray(value) || value.length === 0) {
    throw new ConfigError(field, `must be a path or a non-empty list of paths, got ${describeOptionValue(value)}`);
  }
  return value.map((item: unknown, index) => path(`${field}[${index}]`, item));
}

function integer(field: string, value: unknown, min: number, max: number, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== "number" || !Number.isInteger(value) || value < min || value > max) {
    const got = typeof value === "number" ? String(value) : describeOptionValue(value);
    throw new ConfigError(field, `must be an integer from ${min} to ${max}, got ${got}`);
  }
  return value;
}

function loginUser(field: string, value: unknown): string {
  if (typeof value !== "string" || value.length === 0) {
    throw new ConfigError(field, `must be a non-empty user name, got ${describeOptionValue(value)}`);
  }
  if (value.startsWith("-") || LOGIN_USER_FORBIDDEN.test(value)) {
    throw new ConfigError(field, "must be a plain user name (no leading -, whitespace, @ or shell characters)");
  }
  return value;
}

/** Parse OpenSSH's `-J` / `ProxyJump` syntax: `[user@]host[:port]`, comma-separated. `none` (or "") means no jump. */
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
  return checkJump(field, { host, ...(port !== undefined ? { port } : {}), ...(user !== undefined ? { user } : {}) });
}

function checkJump(field: string, hop: Target): Target {
  if (hop.host.startsWith("-") || /[\s\0'"`$\\;|&<>(),@]/.test(hop.host)) {
    throw new ConfigError(`${field}.host`, `"${hop.host}" is not a host name or address`);
  }
  if (hop.user !== undefined) loginUser(`${field}.user`, hop.user);
  return hop;
}

function jumps(field: string, value: unknown): readonly Target[] | undefined {
  if (value === undefined) return undefined;
  if (typeof value === "string") return parseProxyJump(value, field);
  if (!Array.isArray(value)) throw new ConfigError(field, `must be a string or a list of targets, got ${describeOptionValue(value)}`);
  return value.map((hop: unknown, index) => {
    const where = `${field}[${index}]`;
    if (typeof hop !== "object" || hop === null) throw new ConfigError(where, `must be a target, got ${describeOptionValue(hop)}`);
    const { host, port, user } = hop as Record<string, unknown>;
    if (typeof host !== "string" || host === "") throw new ConfigError(`${where}.host`, "must be a non-empty string");
    if (port !== undefined) integer(`${where}.port`, port, 1, 65535, 22);
    if (user !== undefined) loginUser(`${where}.user`, user);
    return checkJump(where, { host, ...(port !== undefined ? { port: port as number } : {}), ...(user !== undefined ? { user: user as string } : {}) });
  });
}

/**
 * Validate the shared options of an SSH transport, before any I/O. Every problem is a `ConfigError` whose `field`
 * names the option. Unknown keys are the caller's to reject first (`rejectUnknownOptions` with the transport's
 * full list of names).
 */
export function resolveSshTransportOptions(options: SshTransportOptions): ResolvedSshTransportOptions {
  const user = options.user === undefined ? undefined : loginUser("user", options.user);
  const identityFiles = paths("identityFile", options.identityFile);
  if (options.identitiesOnly !== undefined && typeof options.identitiesOnly !== "boolean") {
    throw new ConfigError("identitiesOnly", `must be true or false, got ${describeOptionValue(options.identitiesOnly)}`);
  }
  const agent = options.agent;
  if (agent !== undefined && agent !== false) path("agent", agent);
  const certificateFiles = paths("certificateFile", options.certificateFile);
  if (options.forwardAgent !== undefined && typeof options.forwardAgent !== "boolean") {
    throw new ConfigError("forwardAgent", `must be true or false, got ${describeOptionValue(options.forwardAgent)}`);
  }
  if (options.forwardAgent === true && agent === false) {
    throw new ConfigError("forwardAgent", "needs an agent to forward, but agent is false; remove one of them");
  }
  const onKeyboardInteractive: unknown = options.onKeyboardInteractive;
  if (onKeyboardInteractive !== undefined && typeof onKeyboardInteractive !== "function") {
    throw new ConfigError("onKeyboardInteractive", `must be a function, got ${describeOptionValue(onKeyboardInteractive)}`);
  }
  const password = options.password;
  if (password !== undefined && (typeof password !== "string" || password.length === 0)) {
    throw new ConfigError("password", `must be a non-empty string, got ${typeof password === "string" ? "an empty string" : describeOptionValue(password)}`);
  }
  const knownHostsFiles = paths("knownHostsFile", options.knownHostsFile);
  const hostKeyChecking = options.hostKeyChecking ?? "strict";
  if (!HOST_KEY_CHECKING.includes(hostKeyChecking)) {
    throw new ConfigError("hostKeyChecking", `must be one of ${HOST_KEY_CHECKING.map((value) => `"${value}"`).join(", ")}`);
  }
  if (hostKeyChecking === "insecure-accept-any" && knownHostsFiles.length > 0) {
    throw new ConfigError("knownHostsFile", 'is ignored with hostKeyChecking "insecure-accept-any"; remove one of them');
  }
  const configFile = options.configFile;
  if (configFile !== undefined && configFile !== false) path("configFile", configFile);
  const connectTimeout = integer("connectTimeout", options.connectTimeout, 1, MAX_MS, 10_000);
  return {
    user,
    identityFiles,
    certificateFiles,
    identitiesOnly: options.identitiesOnly,
    agent,
    forwardAgent: options.forwardAgent,
    password,
    onKeyboardInteractive: options.onKeyboardInteractive,
    knownHostsFiles,
    hostKeyChecking,
    configFile,
    proxyJump: jumps("proxyJump", options.proxyJump),
    connectTimeout,
    readyTimeout: integer("readyTimeout", options.readyTimeout, 1, MAX_MS, connectTimeout + 20_000),
    keepaliveInterval: integer("keepaliveInterval", options.keepaliveInterval, 0, MAX_MS, 15_000),
    keepaliveCountMax: integer("keepaliveCountMax", options.keepaliveCountMax, 1, 1000, 3),
    maxChannels: integer("maxChannels", options.maxChannels, 1, 1000, 10),
  };
}
