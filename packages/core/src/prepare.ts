/**
 * Command preparation, in one place: env, working dir, sudo and script command lines, all built with the
 * one quoting function (`quote.ts`). The result is a POSIX sh script; a transport receives it as
 * `SpawnRequest.command` and has `/bin/sh` run it through the login shell with `loginShellCommand`
 * (`login-shell.ts`), so it means the same whatever the user's login shell is (bash, dash, zsh, mksh, busybox ash,
 * fish, tcsh).
 *
 * Shape of a prepared command (`N` is a random hex nonce, one per prepared command):
 *
 * ```sh
 * printf "[tunnel-start-N]" >&2;
 * CDPATH= cd -- '/srv/my app' || { printf '%s\n' 'tunnel[N]: cannot change directory' >&2; exit 97; }
 * export LC_ALL=C
 * export GREETING='it'\''s $HOME'
 * <cmd, unchanged>
 * ```
 *
 * - The start token `[tunnel-start-N]` comes first (stderr, no newline): `/bin/sh` is running the prepared script.
 *   Its line uses no `'`, `%` or newline, so a plain command prepared with nothing else (`uptime`) stays a script of
 *   characters every login shell keeps literal, which `loginShellCommand` sends with no decoding step.
 *   `runProcess` strips it and requires it, so a login shell that never ran the command (a `nologin` shell, a
 *   restricted one) is an `UnsupportedHostError` naming the host's message, never a silent result. An SSH
 *   connection's login shell is fixed when it authenticates, so once one prepared command's token came back on a
 *   connection, `runProcess` sends later ones on it without this first line.
 * - The working dir is entered next, so a missing one fails BEFORE the command runs: exit code
 *   `PREPARATION_EXIT_CODE` (97) and the line `tunnel[N]: cannot change directory` on stderr (after the shell's own
 *   message naming the folder). `detectPreparationFailure()` recognises it; the nonce keeps a command that happens
 *   to exit 97 from being mistaken for it. A leading `~` or `~/` means the home of the user the command runs as
 *   (`"$HOME"`); every other character is literal. `CDPATH` is cleared so `cd` neither wanders nor prints.
 * - Env is set inline with `export NAME='value'` (servers drop SSH `env` requests unless `AcceptEnv` allows them).
 *   Exports follow the `cd`, so `env.HOME` does not change where `~` points, and they reach every process the
 *   command starts.
 * - Without sudo the command runs in that `/bin/sh`, unchanged; with `shell` (e.g. `bash`) it is handed to that
 *   interpreter instead: `exec bash -c '<cmd>'`, after a check that it exists (exit 97, `interpreter not found`).
 * - With sudo, the whole script above (cd, exports, command) is quoted once and run by `/bin/sh` under sudo,
 *   so env survives sudo's `env_reset` and the `cd` happens as the target user:
 *   `exec sudo -n -u bob -- /bin/sh -c '<group>' sh '<script>'`, where `<group>` (`remote/process-group.ts`) runs the script
 *   in a process group of its own and passes the signals sudo relays on to that whole group: sudo passes a signal
 *   only to its own command, so a cancel would otherwise leave the command's children running as the target user. The script's first line prints the ready token
 *   `[tunnel-ready-N]` to stderr (no newline): sudo let the command through. Without a password sudo gets `-n` and
 *   fails fast with `sudo: a password is required` instead of waiting. With a password it gets
 *   `-S -p '[tunnel-sudo-N]'`: the caller waits for that prompt on stderr (matching it anywhere in a line — sudo-rs
 *   rewrites prompts), writes `password + "\n"` to stdin once, strips prompt and ready token from the output, and
 *   only then streams the command's own stdin. No prompt at all (cached credentials) is fine. The password is
 *   never on the command line. `PreparedCommand.sudo` has the shape of `run.ts`'s `SudoExchange`.
 * - After the ready token the shell waits for the gate line `go-N` on stdin, and only then enters the working dir,
 *   exports and runs the command. The caller writes it when the ready token arrives, unless it gave up meanwhile:
 *   an abort or timeout during the prompt phase closes the channel, the shell reads EOF and exits 125, and nothing
 *   of the request ever ran — however late sudo let it through.
 */
import { randomBytes } from "node:crypto";
import { ValidationError } from "./errors.js";
import { OWN_PROCESS_GROUP_OF_ARGUMENT } from "./remote/process-group.js";
import { quote, quoteArgs } from "./quote.js";
import type { Command, Script, SudoOptions } from "./types.js";
import { validateEnv, validateInterpreter, validatePath, validateSudo } from "./validate.js";

/**
 * Exit code of a prepared command that failed before the user's command ran (working dir, interpreter).
 * Told apart from a command's own `exit 97` by the nonce marker on stderr: see `detectPreparationFailure`.
 */
export const PREPARATION_EXIT_CODE = 97;

/** Why a prepared command stopped before running the user's command. */
export type PreparationFailure = "working-dir" | "interpreter";

const MARKER_TEXT: Readonly<Record<PreparationFailure, string>> = {
  "working-dir": "cannot change directory",
  interpreter: "interpreter not found",
};

export interface PrepareOptions {
  /**
   * The nonce for the sudo prompt and failure markers: 8–64 letters or digits. Default: 16 random hex digits.
   * Only tests should pass one.
   */
  readonly nonce?: string;
}

/**
 * The sudo exchange a prepared command expects — the shape of `run.ts`'s `SudoExchange` (add `promptTimeoutMs`).
 * `toJSON()` and `util.inspect` redact the password; a spread copy does not, so keep copies out of logs.
 */
export interface PreparedSudo {
  /** The exact prompt passed to `sudo -p`, e.g. `[tunnel-sudo-3f2a…]`. Match it anywhere in the output and strip it. */
  readonly prompt: string;
  /**
   * Printed to stderr, without a newline, by the shell that sudo started — before the `cd`, the exports and the
   * user's command. Its arrival ends the prompt phase; strip it from the output.
   */
  readonly ready: string;
  /** The password to write (followed by `"\n"`) once the prompt appears. Absent for `sudo -n`. */
  readonly password?: string;
  /**
   * The line to write (followed by `"\n"`) to stdin once the ready token arrived, before the command's own stdin.
   * The command runs nothing of the request until it reads this line; never write it after giving up on the run.
   */
  readonly gate: string;
}

/** A command line ready for `Connection.spawn({ command })`. */
export interface PreparedCommand {
  /** The POSIX sh script for `SpawnRequest.command`. Never contains the sudo password. */
  readonly command: string;
  /**
   * The token the script prints to stderr (no newline) before anything else: pass it to `runProcess` as
   * `RunRequest.start`, which strips it and fails when it never came.
   */
  readonly start: string;
  /** The nonce in the sudo prompt, the ready token and the failure markers. */
  readonly nonce: string;
  /** Present when the command runs through sudo (with or without a password). */
  readonly sudo?: PreparedSudo;
}

/** The parts of a command or script that preparation uses. */
export interface PrepareParts {
  readonly env?: Readonly<Record<string, string>>;
  readonly workingDir?: string;
  readonly sudo?: boolean | SudoOptions;
}

/** Random bytes drawn ahead for nonces, 8 at a time (one call into the CSPRNG per 64 nonces). */
const nonceBytes = { pool: Buffer.alloc(0), next: 0 };

/** A new random nonce: 16 hex digits. */
export function createNonce(): string {
  if (nonceBytes.next + 8 > nonceBytes.pool.length) {
    nonceBytes.pool = randomBytes(512);
    nonceBytes.next = 0;
  }
  const start = nonceBytes.next;
  nonceBytes.next += 8;
  return nonceBytes.pool.toString("hex", start, start + 8);
}

/** The prompt given to `sudo -S -p` for this nonce. */
export function sudoPrompt(nonce: string): string {
  return `[tunnel-sudo-${nonce}]`;
}

/** The token every prepared command prints to stderr first: `/bin/sh` runs the script. */
export function startToken(nonce: string): string {
  return `[tunnel-start-${nonce}]`;
}

/**
 * The first words of every prepared command: print the start token to stderr. The token is hex in brackets, quoted
 * with `"` (no glob), so the line has only characters `loginShellCommand` sends as they are. `runProcess` leaves it
 * out on a connection whose login shell has already run a prepared command.
 */
export function startLine(start: string): string {
  return `printf "${start}" >&2; `;
}

/** The token a sudo-wrapped command prints to stderr once sudo let it through. */
export function sudoReadyToken(nonce: string): string {
  return `[tunnel-ready-${nonce}]`;
}

/** The line a sudo-wrapped command waits for on stdin, after its ready token, before it runs anything else. */
export function sudoGateLine(nonce: string): string {
  return `go-${nonce}`;
}

/**
 * The first lines of the shell that sudo starts: print the ready token, then wait for the gate line on stdin. Until the
 * caller writes that line nothing of the request runs, so a caller that gave up during the prompt phase (abort, timeout)
 * only has to close the channel: the shell reads EOF and exits. On a terminal (`pty`) the gate line is not echoed.
 */
function sudoGateLines(nonce: string): string[] {
  return [
    `tunnel_tty=$( [ -t 0 ] && stty -g 2>/dev/null && stty -echo 2>/dev/null )`,
    `printf '%s' ${quote(sudoReadyToken(nonce))} >&2`,
    `IFS= read -r tunnel_gate && [ "$tunnel_gate" = ${quote(sudoGateLine(nonce))} ] || exit ${SUDO_GATE_EXIT_CODE}`,
    `[ -z "$tunnel_tty" ] || stty "$tunnel_tty" 2>/dev/null`,
    `unset tunnel_tty tunnel_gate`,
  ];
}

/** Exit code of a sudo-wrapped command whose caller closed stdin instead of writing the gate line. */
export const SUDO_GATE_EXIT_CODE = 125;

/** The stderr line a prepared command prints when it stops early for `failure`. */
export function preparationMarker(nonce: string, failure: PreparationFailure): string {
  return `tunnel[${nonce}]: ${MARKER_TEXT[failure]}`;
}

/**
 * Did the prepared command stop before the user's command ran? Returns why, or `undefined`.
 * True only for exit code 97 together with this command's nonce marker on stderr.
 * @example if (detectPreparationFailure(prepared, result) === "working-dir") throw new ValidationError("workingDir", "does not exist")
 */
export function detectPreparationFailure(
  prepared: Pick<PreparedCommand, "nonce">,
  outcome: { readonly exitCode: number | null; readonly stderr: string },
): PreparationFailure | undefined {
  if (outcome.exitCode !== PREPARATION_EXIT_CODE) return undefined;
  for (const failure of Object.keys(MARKER_TEXT) as PreparationFailure[]) {
    if (outcome.stderr.includes(preparationMarker(prepared.nonce, failure))) return failure;
  }
  return undefined;
}

function resolveNonce(options: PrepareOptions | undefined): string {
  const nonce = options?.nonce;
  if (nonce === undefined) return createNonce();
  if (!/^[A-Za-z0-9]{8,64}$/.test(nonce)) {
    throw new ValidationError("nonce", "must be 8 to 64 letters or digits");
  }
  return nonce;
}

function stopLine(nonce: string, failure: PreparationFailure): string {
  return `{ printf '%s\\n' ${quote(preparationMarker(nonce, failure))} >&2; exit ${PREPARATION_EXIT_CODE}; }`;
}

/** `~` and `~/rest` are the home of the user the command runs as; everything else is literal. */
function changeDirectoryLine(workingDir: string, nonce: string): string {
  const stop = stopLine(nonce, "working-dir");
  if (workingDir === "~" || workingDir.startsWith("~/")) {
    const rest = workingDir.slice(1);
    // An unset or empty HOME must fail: `cd ""` succeeds in dash and bash without moving.
    const path = rest.length > 0 ? `"$HOME"${quote(rest)}` : `"$HOME"`;
    return `[ -n "$HOME" ] && CDPATH= cd -- ${path} || ${stop}`;
  }
  return `CDPATH= cd -- ${quote(workingDir)} || ${stop}`;
}

function exportLines(env: Readonly<Record<string, string>> | undefined): string[] {
  return Object.entries(env ?? {}).map(([name, value]) => `export ${name}=${quote(value)}`);
}

function normaliseSudo(sudo: PrepareParts["sudo"]): SudoOptions | undefined {
  if (sudo === undefined || sudo === false) return undefined;
  return sudo === true ? {} : sudo;
}

const REDACTED = "[redacted]";

function preparedSudo(prompt: string, ready: string, gate: string, password: string | undefined): PreparedSudo {
  const redacted = () => ({ prompt, ready, gate, ...(password !== undefined ? { password: REDACTED } : {}) });
  const sudo = { prompt, ready, gate, ...(password !== undefined ? { password } : {}) };
  for (const [key, value] of [
    ["toJSON", redacted],
    [Symbol.for("nodejs.util.inspect.custom"), redacted],
  ] as const) {
    Object.defineProperty(sudo, key, { value, enumerable: false });
  }
  return sudo;
}

/**
 * The longest prepared command, in UTF-8 bytes. The command travels as one SSH exec request and reaches the host as one
 * argument of `<login shell> -c`: Linux refuses a single argument past 128 KiB (`MAX_ARG_STRLEN`, "Argument list too
 * long"), sshd drops a connection whose packet passes 256 KiB ("Bad packet length", taking every other channel of it
 * along), and the openssh transport passes the command as one argument of a local `ssh`. The margin leaves room for
 * what a transport adds around it. Larger data belongs on stdin, or in a script's content (which goes through stdin).
 */
export const MAX_COMMAND_BYTES = 96 * 1024;

function checkSize(command: string, parts: PrepareParts, body: readonly string[]): void {
  const size = Buffer.byteLength(command, "utf8");
  if (size <= MAX_COMMAND_BYTES) return;
  const envBytes = Object.entries(parts.env ?? {}).reduce((sum, [name, value]) => sum + name.length + Buffer.byteLength(value, "utf8"), 0);
  const bodyBytes = body.reduce((sum, line) => sum + Buffer.byteLength(line, "utf8"), 0);
  const field = envBytes >= bodyBytes ? "env" : "cmd";
  throw new ValidationError(
    field,
    `makes the command line ${size} bytes, more than the ${MAX_COMMAND_BYTES} an exec request and the host's argument limit ` +
      `carry safely; pass large data through stdin (or as a script's content)`,
  );
}

/** Wraps the lines (cd, exports, extra checks, command) for the login shell, through sudo when asked. */
function assemble(parts: PrepareParts, body: readonly string[], nonce: string): PreparedCommand {
  validateEnv(parts.env);
  if (parts.workingDir !== undefined) validatePath(parts.workingDir, "workingDir");
  validateSudo(parts.sudo);
  const sudo = normaliseSudo(parts.sudo);
  const start = startToken(nonce);
  const lines = [
    ...(sudo ? sudoGateLines(nonce) : []),
    ...(parts.workingDir !== undefined ? [changeDirectoryLine(parts.workingDir, nonce)] : []),
    ...exportLines(parts.env),
    ...body,
  ];
  const script = lines.join("\n");
  if (!sudo) {
    checkSize(script, parts, body);
    return { command: `${startLine(start)}${script}`, start, nonce };
  }
  // sudo reads `-u 1000` as a user *named* 1000; a numeric id means the uid, which sudo spells `#1000`.
  const user = sudo.user !== undefined ? ["-u", /^[0-9]+$/.test(sudo.user) ? `#${sudo.user}` : sudo.user] : [];
  const prompt = sudoPrompt(nonce);
  const mode = sudo.password === undefined ? ["-n"] : ["-S", "-p", prompt];
  // On the far side of sudo, the script runs in a process group of its own that the signals sudo passes on reach.
  const command = `${startLine(start)}exec sudo ${quoteArgs([...mode, ...user, "--", "/bin/sh", "-c", OWN_PROCESS_GROUP_OF_ARGUMENT, "sh", script])}`;
  checkSize(command, parts, body);
  return {
    command,
    start,
    nonce,
    sudo: preparedSudo(prompt, sudoReadyToken(nonce), sudoGateLine(nonce), sudo.password),
  };
}

/**
 * Prepare a command: working dir, env and sudo around `command.cmd` (which is passed through unquoted — it is
 * a shell command line for `/bin/sh`, or for `command.shell`). Validates the fields it uses (env names, working
 * dir, sudo, shell) and throws `ValidationError`; run `validateCommand` first for the rest of the request.
 * @example
 * prepareCommand({ cmd: "id -u", sudo: { user: "bob" }, env: { A: "1" } }, { nonce: "0123abcd" }).command
 * // => `printf "[tunnel-start-0123abcd]" >&2; exec sudo -n -u bob -- /bin/sh -c '…export A=1\nid -u'`
 */
export function prepareCommand(command: Pick<Command, "cmd" | "env" | "workingDir" | "sudo" | "shell">, options?: PrepareOptions): PreparedCommand {
  if (typeof command.cmd !== "string" || command.cmd.trim().length === 0) {
    throw new ValidationError("cmd", "must not be empty");
  }
  if (command.cmd.includes("\0")) throw new ValidationError("cmd", "must not contain a NUL byte");
  const nonce = resolveNonce(options);
  if (command.shell === undefined) return assemble(command, [command.cmd], nonce);
  validateInterpreter(command.shell, undefined, "shell");
  return assemble(command, [interpreterCheck(command.shell, nonce), `exec ${quote(command.shell)} -c ${quote(command.cmd)}`], nonce);
}

/**
 * The words that start a script's interpreter: the explicit `interpreter`, else the shebang
 * (Linux semantics: the path, then at most one argument holding the rest of the line), else `/bin/sh`.
 * @example scriptInterpreter({ content: "#!/usr/bin/env python3\nprint(1)" }) // => ["/usr/bin/env", "python3"]
 */
export function scriptInterpreter(script: Pick<Script, "interpreter" | "content">): readonly string[] {
  if (script.interpreter !== undefined) {
    validateInterpreter(script.interpreter);
    return [script.interpreter];
  }
  const content = typeof script.content === "string" ? script.content : "";
  if (content.startsWith("#!")) {
    const end = content.indexOf("\n");
    const line = content
      .slice(2, end < 0 ? undefined : end)
      .replace(/\r$/, "")
      .trim();
    if (line.includes("\0")) throw new ValidationError("content", "the shebang line must not contain a NUL byte");
    const match = /^(\S+)(?:[ \t]+(.*))?$/.exec(line);
    if (match?.[1]) return match[2] ? [match[1], match[2]] : [match[1]];
  }
  return ["/bin/sh"];
}

/** Fails with the interpreter marker unless the program exists (as the user the script runs as, with its PATH). */
function interpreterCheck(program: string, nonce: string): string {
  const stop = stopLine(nonce, "interpreter");
  return program.startsWith("/") ? `[ -x ${quote(program)} ] || ${stop}` : `command -v -- ${quote(program)} >/dev/null 2>&1 || ${stop}`;
}

/**
 * Prepare the command that runs an uploaded script: `<interpreter words> <scriptPath> <args...>`, every word
 * quoted, with the same working dir, env and sudo wrapping as `prepareCommand`. Before running, it checks that
 * the interpreter exists (`[ -x path ]` or `command -v name`, after the env exports so `env.PATH` counts) and
 * otherwise stops with exit 97 and the `interpreter not found` marker.
 *
 * The executor uploads `script.content` itself (through the exec channel into a `mktemp -d` folder, mode 0700)
 * and passes that file's path here; it removes the folder afterwards.
 * @example
 * prepareScriptCommand({ content: "echo $1", interpreter: "bash", args: ["a b"] }, "/tmp/tunnel.X/script").command
 * // => "command -v -- bash >/dev/null 2>&1 || { …; exit 97; }\nbash /tmp/tunnel.X/script 'a b'"
 */
export function prepareScriptCommand(
  script: Pick<Script, "content" | "interpreter" | "args" | "env" | "workingDir" | "sudo">,
  scriptPath: string,
  options?: PrepareOptions,
): PreparedCommand {
  validatePath(scriptPath, "scriptPath");
  const args = script.args ?? [];
  args.forEach((arg, index) => {
    if (typeof arg !== "string" || arg.includes("\0")) {
      throw new ValidationError(`args[${index}]`, "must be a string without NUL bytes");
    }
  });
  const nonce = resolveNonce(options);
  const words = scriptInterpreter(script);
  // `exec`: the interpreter replaces /bin/sh, so a script killed by a signal reports the signal, not 128+N.
  const body = [interpreterCheck(words[0] as string, nonce), `exec ${quoteArgs([...words, scriptPath, ...args])}`];
  return assemble(script, body, nonce);
}
