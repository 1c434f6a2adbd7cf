/**
 * The one line that reaches a host's login shell.
 *
 * An SSH server runs a session's command with the user's login shell (`$SHELL -c <line>`), and users do not choose
 * their hosts' shells: bash, dash, zsh, ksh/mksh, busybox ash, but also fish and tcsh/csh, which parse POSIX syntax
 * differently or not at all (fish runs nothing and exits 0 on `if …; then`; tcsh expands `!` even inside single
 * quotes and rejects a newline in them). So tunnel never sends a script to the login shell. It sends
 *
 * ```sh
 * exec /bin/sh -c 'eval "set --; $(printf "$1")"' sh '<the script, encoded>'
 * ```
 *
 * which every one of those shells reads the same way: `exec`, plain words and two single-quoted words holding no
 * `'`, `\\` before a quote, `!` or newline. The encoding keeps the characters that are literal inside single quotes
 * in all of them and writes every other byte (`'`, `\`, `!`, `%`, newlines, control and non-ASCII bytes) as a
 * `printf` octal escape (`\047`); `/bin/sh` decodes it with its own `printf` and `eval`s the script with no
 * positional parameters. The login shell still starts first, so its environment (`PATH` from its startup files)
 * applies; `exec` keeps the session's pid, so a signal to the session still reaches the script's shell.
 *
 * A script made only of those literal characters (`true`, `uptime`, `df -h /srv`, a prepared command with no env or
 * quoted words) needs no decoding: it goes as `exec /bin/sh -c '<the script>' sh`, the same `/bin/sh`, `$0` and empty
 * positional parameters, one command substitution (a fork in `/bin/sh`) fewer.
 */
import { ValidationError } from "./errors.js";

/**
 * Linux limits one argument to 128 KiB (`MAX_ARG_STRLEN`), and the server passes the whole line as one argument
 * to the login shell. Longer lines are refused before they are sent.
 */
export const MAX_LOGIN_LINE_LENGTH = 128 * 1024 - 1024;

/** Bytes that pass unchanged inside single quotes in sh, bash, zsh, ksh, busybox ash, fish and tcsh/csh. */
const LITERAL = new Uint8Array(128);
for (const character of 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789 /._=+,:@"$;&|()<>*?[]{}~#^`-') {
  LITERAL[character.charCodeAt(0)] = 1;
}

const PREFIX = `exec /bin/sh -c 'eval "set --; $(printf "$1")"' sh '`;
const PLAIN_PREFIX = "exec /bin/sh -c '";
const PLAIN_SUFFIX = "' sh";

/** Whether every byte of `script` is one that passes unchanged inside single quotes in every login shell. */
function isLiteral(script: string): boolean {
  for (let index = 0; index < script.length; index += 1) {
    const code = script.charCodeAt(index);
    if (code >= 128 || LITERAL[code] !== 1) return false;
  }
  return true;
}

/** The `printf` format that prints `script` exactly (literal characters as they are, every other byte as `\ooo`). */
export function encodeForPrintf(script: string): string {
  let out = "";
  for (const byte of Buffer.from(script, "utf8")) {
    out += byte < 128 && LITERAL[byte] === 1 ? String.fromCharCode(byte) : `\\${byte.toString(8).padStart(3, "0")}`;
  }
  return out;
}

/**
 * The line to send to the login shell so that `/bin/sh` runs `script` (a POSIX sh script), whatever the login
 * shell is. Transports pass every `SpawnRequest.command` (or their own wrapper around it) through this.
 * Throws `ValidationError` for a script with a NUL byte or one whose line would pass `MAX_LOGIN_LINE_LENGTH`.
 * @example loginShellCommand("echo 'hi'") === `exec /bin/sh -c 'eval "set --; $(printf "$1")"' sh 'echo \\047hi\\047'`
 * @example loginShellCommand("uptime") === "exec /bin/sh -c 'uptime' sh"
 */
export function loginShellCommand(script: string): string {
  if (script.includes("\0")) throw new ValidationError("command", "must not contain a NUL byte");
  const line = isLiteral(script) ? `${PLAIN_PREFIX}${script}${PLAIN_SUFFIX}` : `${PREFIX}${encodeForPrintf(script)}'`;
  if (line.length > MAX_LOGIN_LINE_LENGTH) {
    throw new ValidationError("command", `is too long for one remote command line (${line.length} bytes encoded, at most ${MAX_LOGIN_LINE_LENGTH})`);
  }
  return line;
}

/** The length `loginShellCommand(script)` would have, without building it. */
export function loginShellLength(script: string): number {
  if (isLiteral(script)) return PLAIN_PREFIX.length + script.length + PLAIN_SUFFIX.length;
  let length = PREFIX.length + 1;
  for (const byte of Buffer.from(script, "utf8")) length += byte < 128 && LITERAL[byte] === 1 ? 1 : 4;
  return length;
}
