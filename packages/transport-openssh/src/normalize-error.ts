/**
 * The one place where what the `ssh` binary says becomes a tunnel error.
 *
 * OpenSSH reports every failure the same way — exit status 255 and a line on stderr — so the stderr text,
 * the phase we were in and whether the ControlMaster is still alive are all there is to go on.
 * Patterns are matched on the messages of OpenSSH 7.x–9.x; anything unrecognised still becomes a typed
 * error of the phase's default kind, with the text kept in the message (ssh never prints secrets).
 */
import { AuthenticationError, ChannelError, ConfigError, ConnectError, HostKeyError, formatTarget, type Target, type TunnelError } from "@tunnel-sh/core";

/** Where the failing `ssh` invocation was in its life. */
export type SshFailurePhase =
  /** Starting the ControlMaster: nothing was connected yet. */
  | "connect"
  /** A mux client asking the master for a session, before the remote command started. */
  | "channel"
  /** The master (or its link) went away after it was ready. */
  | "lost";

export interface SshFailure {
  readonly phase: SshFailurePhase;
  /** What ssh printed on stderr (only ssh's own lines; never the remote command's output). */
  readonly stderr: string;
  /** The ssh process's exit status, or null when it was killed. */
  readonly exitCode: number | null;
  readonly target?: Target | undefined;
}

type Build = (message: string, failure: SshFailure, detail: string) => TunnelError;

interface Rule {
  readonly pattern: RegExp;
  /** Which phases this rule applies to; absent means every phase. */
  readonly phases?: readonly SshFailurePhase[];
  readonly build: Build;
}

const fingerprintPattern = /SHA256:[A-Za-z0-9+/]+={0,2}/;

const lost: Build = (message, failure) =>
  new ConnectError(`the connection to ${where(failure)} was lost: ${message}`, {
    lost: true,
    phase: failure.phase === "connect" ? "connect" : "exec",
    target: failure.target,
  });

const connectFailed =
  (retryable: boolean): Build =>
  (message, failure) => {
    if (failure.phase === "lost") return lost(message, failure, message);
    return new ConnectError(`could not connect to ${where(failure)}: ${message}`, {
      retryable,
      target: failure.target,
    });
  };

/** Ordered: the first matching row wins. */
const rules: readonly Rule[] = [
  // The mux client asked for a session and the server said no (MaxSessions): a budget problem, the connection lives on.
  {
    pattern: /session request failed|Session open refused by peer|open failed: administratively prohibited/i,
    phases: ["channel"],
    build: (message, failure) =>
      new ChannelError(`the server refused a new session on ${where(failure)}: ${message}`, {
        refused: true,
        target: failure.target,
      }),
  },
  // The mux client found no master: the socket is gone or dead; ProxyCommand=/bin/false turned the silent fallback
  // to a direct connection into one of these lines.
  {
    pattern:
      /Control socket connect\(|kex_exchange_identification|Connection closed by UNKNOWN port|mux_client_hello_exchange|master (?:returned error|is not running)|No such file or directory.*(?:control|socket)|ssh_exchange_identification/i,
    phases: ["channel"],
    build: (message, failure) =>
      new ConnectError(`the ControlMaster for ${where(failure)} is gone: ${message}`, {
        lost: true,
        phase: "channel",
        target: failure.target,
      }),
  },
  {
    pattern:
      /REMOTE HOST IDENTIFICATION HAS CHANGED|Host key verification failed|host key is known for|HOST KEY .*REVOKED|Host key for .* has changed|hostkeys_find_by_key_hostfile/i,
    build: (message, failure, detail) => {
      const fingerprint = fingerprintPattern.exec(detail)?.[0];
      return new HostKeyError(`host key verification failed for ${where(failure)}: ${message}`, {
        target: failure.target,
        ...(fingerprint ? { fingerprint } : {}),
      });
    },
  },
  {
    pattern:
      /Permission denied \(|Too many authentication failures|No more authentication methods|Authentication failed|authentications that can continue: *$/im,
    build: (message, failure) => new AuthenticationError(`authentication failed for ${where(failure)}: ${message}`, { target: failure.target }),
  },
  {
    pattern:
      /Bad configuration option|command-line line \d+|Can't open user config file|no argument after keyword|garbage at end of line|Bad port|Unsupported option|Bad escape character|unknown (?:option|cipher|key type)|Invalid (?:argument|option)|usage: ssh/i,
    build: (message, failure) => new ConfigError("ssh", `ssh rejected its configuration for ${where(failure)}: ${message}`, { target: failure.target }),
  },
  { pattern: /Could not resolve hostname|Name or service not known|nodename nor servname|Temporary failure in name resolution/i, build: connectFailed(true) },
  { pattern: /Connection refused/i, build: connectFailed(true) },
  { pattern: /No route to host|Network is unreachable|Host is unreachable/i, build: connectFailed(true) },
  // Keepalive gave up, or the server went away after the connection was up.
  {
    pattern: /Timeout, server .* not responding|closed by remote host|client_loop: send disconnect|Broken pipe|Connection reset/i,
    phases: ["lost"],
    build: lost,
  },
  { pattern: /timed out|Connection timed out|Operation timed out/i, build: connectFailed(true) },
  { pattern: /Unable to negotiate/i, build: connectFailed(false) },
  { pattern: /kex_exchange_identification|Connection closed by|Connection reset|closed by remote host|Broken pipe/i, build: connectFailed(true) },
];

/** ssh's informational noise, dropped before matching and from messages. */
const noise = [/^Warning: Permanently added/i, /^debug\d?:/, /^\s*$/, /^Shared connection to .* closed\.?$/i];

/** The meaningful lines of ssh's stderr, joined; the ASCII-art host key banner reduced to its conclusion. */
export function summarizeStderr(stderr: string): string {
  const lines = stderr
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter((line) => !noise.some((pattern) => pattern.test(line)) && !/^@+$/.test(line) && !/^@ .* @$/.test(line));
  const hostKeyConclusion = lines.find((line) => /Host key verification failed|has changed and you have requested strict checking/.test(line));
  // ssh says why it refused a host certificate ("Certificate invalid: expired") before it falls back to the plain key.
  const certificate = lines.filter((line) => /^Certificate (?:invalid|lacks)/i.test(line));
  const picked = hostKeyConclusion ? [...certificate, ...lines.filter((line) => /host key|Host key|Offending/i.test(line)).slice(-3)] : lines.slice(-3);
  const text = picked.join(" / ");
  return text.length > 400 ? `${text.slice(0, 397)}...` : text;
}

/**
 * Turn a failed `ssh` invocation into a tunnel error.
 * @example normalizeSshError({ phase: "connect", stderr: "ssh: connect to host h port 22: Connection refused", exitCode: 255 })
 *   // -> ConnectError code CONNECT, retryable
 */
export function normalizeSshError(failure: SshFailure): TunnelError {
  const summary = summarizeStderr(failure.stderr);
  const message = summary || describeExit(failure.exitCode);
  for (const rule of rules) {
    if (rule.phases && !rule.phases.includes(failure.phase)) continue;
    if (rule.pattern.test(failure.stderr)) return rule.build(message, failure, failure.stderr);
  }
  switch (failure.phase) {
    case "connect":
      return new ConnectError(`could not connect to ${where(failure)}: ${message}`, { target: failure.target });
    case "channel":
      return new ChannelError(`could not start a session on ${where(failure)}: ${message}`, { target: failure.target });
    case "lost":
      return lost(message, failure, message);
  }
}

function describeExit(exitCode: number | null): string {
  return exitCode === null ? "ssh was killed" : `ssh exited with status ${exitCode} without a message`;
}

function where(failure: SshFailure): string {
  return failure.target ? formatTarget(failure.target) : "the host";
}
