/**
 * Options of `OpenSshTransport`, their validation (a `ConfigError` before any I/O) and the ssh arguments they become.
 */
import {
  ConfigError,
  RENAMED_SSH_TRANSPORT_OPTIONS,
  quote,
  SSH_TRANSPORT_OPTIONS,
  ValidationError,
  describeOptionValue,
  rejectUnknownOptions,
  resolveSshTransportOptions,
  type ResolvedSshTransportOptions,
  type SshTransportOptions,
  type Target,
} from "@tunnel-sh/core";
import { DEFAULT_KILL_GRACE_MS } from "@tunnel-sh/core/internal";
import { cipherPreference } from "./cipher-preference.js";

/**
 * Options of `new OpenSshTransport(options)`: the options every tunnel SSH transport shares (`SshTransportOptions`:
 * `identityFile`, `knownHostsFile`, `hostKeyChecking`, `configFile`, `proxyJump`, ... — see core), each turned into
 * the ssh setting it is named after, and the OpenSSH transport's own.
 */
export interface OpenSshTransportOptions extends SshTransportOptions {
  /** The ssh client binary. Default `"ssh"` (found on PATH). */
  readonly sshPath?: string;
  /** After an abort sent SIGTERM, how long to wait before SIGKILL, in ms. Default core's `DEFAULT_KILL_GRACE_MS` (2 000). */
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
  /**
   * Environment for the ssh processes, on top of the few variables taken from this process (`PATH`, `HOME`, `USER`,
   * `LANG`/`LC_*`, `SSH_AUTH_SOCK`, ...: see `INHERITED_VARIABLES`). Nothing else of this process's environment
   * reaches ssh, so pass here what a ProxyCommand in your ssh_config needs.
   */
  readonly env?: Readonly<Record<string, string>>;
}

/** Every option name `OpenSshTransport` accepts: the shared ones, then the OpenSSH transport's own (`satisfies` keeps the list complete). */
export const OPENSSH_TRANSPORT_OPTIONS: readonly (keyof OpenSshTransportOptions)[] = Object.freeze([
  ...SSH_TRANSPORT_OPTIONS,
  ...(Object.keys({
    sshPath: true,
    killGraceMs: true,
    exactExitStatus: true,
    options: true,
    tempDir: true,
    env: true,
  } satisfies Record<Exclude<keyof OpenSshTransportOptions, keyof SshTransportOptions>, true>) as (keyof OpenSshTransportOptions)[]),
]);

export interface ResolvedOptions extends ResolvedSshTransportOptions {
  readonly identitiesOnly: boolean;
  readonly sshPath: string;
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
  ["certificatefile", "use the certificateFile option"],
  ["forwardagent", "use the forwardAgent option"],
  ["kbdinteractiveauthentication", "use the onKeyboardInteractive option"],
  ["identityagent", "use the agent option"],
  ["user", "use the user option"],
  ["proxyjump", "use the proxyJump option"],
  ["serveraliveinterval", "use the keepaliveInterval option"],
  ["serveralivecountmax", "use the keepaliveCountMax option"],
  ["connecttimeout", "use the connectTimeout option"],
  ["proxycommand", "put ProxyCommand in a configFile (or use proxyJump)"],
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

function path(field: string, value: unknown): string {
  if (typeof value !== "string" || value.length === 0) {
    throw new ConfigError(field, `must be a non-empty path, got ${describeOptionValue(value)}`);
  }
  if (/[\0\r\n]/.test(value)) throw new ConfigError(field, "must not contain NUL or line breaks");
  return value;
}

function milliseconds(field: string, value: unknown, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== "number" || !Number.isFinite(value) || value < 0) {
    throw new ConfigError(field, `must be a non-negative number of milliseconds, got ${describeOptionValue(value)}`);
  }
  return value;
}

/** ssh splits a `-o` value of these settings at whitespace. */
function noWhitespace(field: string, value: string): void {
  if (/\s/.test(value)) throw new ConfigError(field, "paths with whitespace are not supported by ssh's -o settings; put it in a configFile");
}

/** Validate every option; throws `ConfigError` naming the field, unknown and renamed ones included. Does no I/O. */
export function resolveOptions(options: OpenSshTransportOptions = {}): ResolvedOptions {
  rejectUnknownOptions(options, OPENSSH_TRANSPORT_OPTIONS, "OpenSshTransport", { renamed: RENAMED_SSH_TRANSPORT_OPTIONS });
  const shared = resolveSshTransportOptions(options);
  shared.knownHostsFiles.forEach((file) => noWhitespace("knownHostsFile", file));
  if (typeof shared.agent === "string") noWhitespace("agent", shared.agent);
  shared.certificateFiles.forEach((file) => noWhitespace("certificateFile", file));
  // ssh reads one line from the askpass helper.
  if (shared.password !== undefined && /[\0\r\n]/.test(shared.password)) {
    throw new ConfigError("password", "must not contain NUL or line breaks");
  }
  const sshPath = options.sshPath === undefined ? "ssh" : path("sshPath", options.sshPath);
  const killGraceMs = milliseconds("killGraceMs", options.killGraceMs, DEFAULT_KILL_GRACE_MS);
  const exactExitStatus = options.exactExitStatus ?? true;
  if (typeof exactExitStatus !== "boolean") throw new ConfigError("exactExitStatus", `must be a boolean, got ${describeOptionValue(exactExitStatus)}`);
  if (options.options !== undefined && (typeof options.options !== "object" || options.options === null || Array.isArray(options.options))) {
    throw new ConfigError("options", `must be an object of ssh settings, got ${describeOptionValue(options.options)}`);
  }
  const extraOptions: Array<readonly [string, string]> = [];
  for (const [key, raw] of Object.entries(options.options ?? {})) {
    const field = `options.${key}`;
    if (!keyPattern.test(key)) throw new ConfigError(field, "is not an ssh option keyword");
    const reason = reservedOptions.get(key.toLowerCase());
    if (reason) throw new ConfigError(field, `cannot be set here: ${reason}`);
    if (typeof raw !== "string" && typeof raw !== "number" && typeof raw !== "boolean") {
      throw new ConfigError(field, `must be a string, a number or a boolean, got ${describeOptionValue(raw)}`);
    }
    const value = typeof raw === "boolean" ? (raw ? "yes" : "no") : String(raw);
    if (!valuePattern.test(value)) {
      throw new ConfigError(field, "has characters ssh would reinterpret (whitespace, quotes, #, $, \\); put it in a configFile");
    }
    extraOptions.push([key, value]);
  }
  const tempDir = options.tempDir === undefined ? undefined : path("tempDir", options.tempDir);
  const env = options.env;
  if (env !== undefined) {
    if (typeof env !== "object" || env === null || Array.isArray(env)) {
      throw new ConfigError("env", `must be an object of variables, got ${describeOptionValue(env)}`);
    }
    for (const [name, value] of Object.entries(env)) {
      if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name) || typeof value !== "string") {
        throw new ConfigError(`env.${name}`, "must be a valid variable name with a string value");
      }
    }
  }
  return {
    ...shared,
    identitiesOnly: shared.identitiesOnly ?? shared.identityFiles.length > 0,
    sshPath,
    killGraceMs,
    exactExitStatus,
    extraOptions,
    tempDir,
    env,
  };
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
  if (options.configFile !== undefined) args.push("-F", options.configFile === false ? "/dev/null" : options.configFile);
  if (target.port !== undefined) args.push("-p", String(target.port));
  const user = target.user ?? options.user;
  if (user !== undefined) args.push("-l", user);
  return args;
}

/** `[user@]host[:port]` hops for `-J`, first hop first. */
export function proxyJumpArg(jumps: readonly Target[]): string {
  return jumps
    .map((hop) => {
      const host = hop.host.includes(":") ? `[${hop.host}]` : hop.host;
      return `${hop.user === undefined ? "" : `${hop.user}@`}${host}${hop.port === undefined ? "" : `:${hop.port}`}`;
    })
    .join(",");
}

/**
 * How one hop is authenticated and its host key checked: the same settings for the destination and every jump host,
 * so a jump host is never checked against another known_hosts file or offered other keys than the destination.
 */
function hopSettings(options: ResolvedOptions, target: Target): string[] {
  const args = commonArgs(options, target);
  // With a password or a keyboard-interactive callback ssh must ask — through the private askpass helper, never a
  // terminal.
  const asks = options.password !== undefined || options.onKeyboardInteractive !== undefined;
  args.push("-o", `BatchMode=${asks ? "no" : "yes"}`);
  if (options.onKeyboardInteractive !== undefined) args.push("-o", "KbdInteractiveAuthentication=yes");
  if (options.password !== undefined) args.push("-o", "NumberOfPasswordPrompts=1");
  args.push("-o", `ConnectTimeout=${seconds(options.connectTimeout)}`);
  if (options.keepaliveInterval > 0) {
    args.push("-o", `ServerAliveInterval=${seconds(options.keepaliveInterval)}`);
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
  for (const file of options.certificateFiles) args.push("-o", `CertificateFile=${escapePercent(file)}`);
  if (options.identitiesOnly) args.push("-o", "IdentitiesOnly=yes");
  if (options.agent !== undefined) args.push("-o", `IdentityAgent=${options.agent === false ? "none" : escapePercent(options.agent)}`);
  // LogLevel ERROR keeps "Warning: Permanently added" and similar chatter out of the error messages.
  args.push("-o", "LogLevel=ERROR");
  return args;
}

/**
 * The `ProxyCommand` that reaches the next hop through `jumps` (first hop first): an `ssh -W` to the last jump host,
 * itself reached through the ones before it. ssh's own `-J` would hand the jump hosts only `-F`, `-l` and `-p` and
 * start `ssh` from PATH; this hands them every setting of `hopSettings` and starts `sshPath`. ssh runs the command
 * with `$SHELL -c` and expands `%` tokens in it first, so every word is quoted for sh (the master gets SHELL=/bin/sh)
 * and its `%` doubled; only `%h` and `%p` of `-W` are left for ssh, and each nested level is escaped once more.
 */
export function proxyCommand(options: ResolvedOptions, jumps: readonly Target[]): string {
  const last = jumps[jumps.length - 1] as Target;
  const words = [options.sshPath, ...hopSettings(options, last), "-o", "ControlMaster=no", "-o", "ControlPath=none"];
  if (jumps.length > 1) words.push("-o", `ProxyCommand=${proxyCommand(options, jumps.slice(0, -1))}`);
  const escaped = (word: string) => escapePercent(quote(word));
  return `${words.map(escaped).join(" ")} -W '[%h]:%p' -- ${escaped(last.host)}`;
}

/** Arguments of the ControlMaster (`ssh -M -N`), before the host. */
export function masterArgs(options: ResolvedOptions, target: Target, socketPath: string, session = false): string[] {
  // With a session (`master-session.ts`) the command follows the host; without, the master runs none.
  const args = ["-M", session ? "-T" : "-N", "-S", escapePercent(socketPath), "-o", "ControlPersist=no", ...hopSettings(options, target)];
  if (options.proxyJump !== undefined) {
    // "none" also overrides a ProxyJump or ProxyCommand from ssh_config (the first value ssh reads wins).
    args.push("-o", options.proxyJump.length === 0 ? "ProxyJump=none" : `ProxyCommand=${proxyCommand(options, options.proxyJump)}`);
  }
  args.push("-o", "EscapeChar=none");
  // The destination only, as with ssh -A: jump hosts never see the agent. Unset, ssh_config's ForwardAgent applies.
  // A path forwards that agent (the `agent` option), whatever SSH_AUTH_SOCK says.
  if (options.forwardAgent !== undefined) {
    const forward = options.forwardAgent ? (typeof options.agent === "string" ? escapePercent(options.agent) : "yes") : "no";
    args.push("-o", `ForwardAgent=${forward}`);
  }
  for (const [key, value] of options.extraOptions) args.push("-o", `${key}=${value}`);
  args.push(...cipherPreference(options.configFile, options.extraOptions));
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
    // The master forwards the agent only for sessions whose mux client asks for it too.
    ...(options.forwardAgent !== undefined ? ["-o", `ForwardAgent=${options.forwardAgent ? "yes" : "no"}`] : []),
    ...commonArgs(options, target),
  ];
}

/** ssh expands `%` tokens in the control path. */
function escapePercent(value: string): string {
  return value.replace(/%/g, "%%");
}
