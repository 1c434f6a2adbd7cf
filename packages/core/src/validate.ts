/**
 * Validation of every request before any I/O.
 *
 * Each `validate*` function throws a `ValidationError` whose `field` names the request field at fault
 * (`host`, `port`, `env`, `env.PATH`, `args[2]`, `sudo.user`, ...) and whose message says what is wrong.
 * Validation never puts a secret or an env value into a message: only names, lengths and positions.
 *
 * The rules, in short:
 * - `host`: non-empty, at most 255 characters, no leading `-`, no whitespace or control characters, none of
 *   ``'`"$\;&<>|(){}`` (OpenSSH's own `valid_hostname` rule), no `@`, `/` or brackets, not `host:port`.
 *   IPv6 addresses are written bare (`::1`, `fe80::1%eth0`); the port goes in `port`.
 * - `port`: an integer 1–65535.
 * - `user` (login): non-empty, at most 256 characters, no leading `-`, no whitespace, control characters,
 *   `:`, `@`, `/` or shell metacharacters.
 * - account names (`sudo.user`, `owner`, `group`): `^[A-Za-z_][A-Za-z0-9_.-]*\$?$` or a numeric id;
 *   `sudo.user` also takes sudo's `#1000` uid form.
 * - env names: `^[A-Za-z_][A-Za-z0-9_]*$`; env values: any string without NUL.
 * - NUL bytes are rejected in every string that reaches a command line (no shell word can hold one), and so are
 *   lone UTF-16 surrogates (no UTF-8 form: the host would get U+FFFD instead).
 * - `timeout`: a positive finite number of milliseconds, at most 2^31−1 (Node timers fire at once past it).
 * - `maxOutputBytes`: a non-negative safe integer (0 keeps nothing; callbacks still see the output).
 * - `mode`: `"0755"`, `"755"` or `0o755`; at most `0o7777` (see `parseMode`).
 * - `interpreter` and `shell`: an absolute path of `[A-Za-z0-9._+/-]` characters or a plain name `^[A-Za-z0-9._+-]+$`
 *   (no spaces, quotes or options: pass extra words as `args`).
 *
 * @example
 * validateCommand({ host: "web-1", cmd: "uptime", env: { LC_ALL: "C" } });   // ok
 * validateCommand({ host: "web-1", cmd: "" });   // throws ValidationError, field "cmd": "must not be empty"
 */
import { ValidationError } from "./errors.js";
import { copyTarget } from "./target.js";
import type { Command, Script, SudoOptions, Target, Transfer } from "./types.js";

/** Node's timers fire immediately for delays above this (with a warning), so no timeout may exceed it. */
export const MAX_TIMEOUT_MS = 2_147_483_647;

const MAX_HOST_LENGTH = 255;
const MAX_USER_LENGTH = 256;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const ACCOUNT_NAME = /^[A-Za-z_][A-Za-z0-9_.-]*\$?$/;
const NUMERIC_ID = /^[0-9]+$/;
const PLAIN_INTERPRETER = /^[A-Za-z0-9._+-]+$/;
const ABSOLUTE_INTERPRETER = /^\/[A-Za-z0-9._+/-]*$/;
// Whitespace (including Unicode spaces), C0/C1 control characters and DEL.
// eslint-disable-next-line no-control-regex
const SPACE_OR_CONTROL = /[\s\x00-\x1f\x7f-\x9f]/u;
const HOST_FORBIDDEN = /['`"$\\;&<>|(){}@/[\]]/;
const USER_FORBIDDEN = /['`"$\\;&<>|(){}@/:]/;
const TERM_NAME = /^[A-Za-z0-9._+-]+$/;

type Fields = Record<string, unknown>;

function fail(field: string, message: string, target?: Target): never {
  throw new ValidationError(field, message, target ? { target } : {});
}

function describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  return typeof value === "object" ? "an object" : typeof value;
}

/** A short, safe rendering of a rejected non-secret value. */
function show(value: unknown): string {
  if (typeof value === "string") return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
  if (typeof value === "number" || typeof value === "boolean") return String(value);
  return describe(value);
}

function checkString(value: unknown, field: string, target?: Target): asserts value is string {
  if (typeof value !== "string") fail(field, `must be a string, got ${describe(value)}`, target);
}

/** A UTF-16 code unit of a surrogate pair without its partner: no UTF-8 encoding exists for it. */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/**
 * No NUL, and valid Unicode: a lone surrogate would reach the host as U+FFFD, a different string than the one asked
 * for, so it is refused rather than silently changed.
 */
function checkNoNul(value: string, field: string, target?: Target): void {
  const index = value.indexOf("\0");
  if (index >= 0) fail(field, `must not contain a NUL byte (found at index ${index})`, target);
  const surrogate = LONE_SURROGATE.exec(value);
  if (surrogate) fail(field, `must be valid Unicode: a lone UTF-16 surrogate at index ${surrogate.index} has no UTF-8 form`, target);
}

function checkBoolean(value: unknown, field: string, target?: Target): void {
  if (value !== undefined && typeof value !== "boolean") {
    fail(field, `must be true or false, got ${describe(value)}`, target);
  }
}

function checkFunction(value: unknown, field: string, target?: Target): void {
  if (value !== undefined && typeof value !== "function") {
    fail(field, `must be a function, got ${describe(value)}`, target);
  }
}

/** Validate a target's `host`, `port` and `user`. */
export function validateTarget(target: Target): void {
  if (typeof target !== "object" || target === null) fail("host", "a target with a host is required");
  const { host, port, user } = target as unknown as Fields;
  checkString(host, "host");
  if (host.length === 0) fail("host", "must not be empty");
  if (host.length > MAX_HOST_LENGTH) fail("host", `must be at most ${MAX_HOST_LENGTH} characters, got ${host.length}`);
  if (host.startsWith("-")) fail("host", `must not start with "-" (it would be read as an option)`);
  if (SPACE_OR_CONTROL.test(host)) fail("host", "must not contain whitespace or control characters");
  if (host.includes("[") || host.includes("]")) {
    fail("host", "write IPv6 addresses without brackets (for example ::1) and put the port in `port`");
  }
  const bad = HOST_FORBIDDEN.exec(host);
  if (bad) fail("host", `must not contain ${JSON.stringify(bad[0])}`);
  // IPv6 addresses hold at least two colons; a single one is a `host:port` that belongs in two fields.
  if (host.split(":").length === 2) fail("host", "looks like host:port; put the port in `port`");
  if (port !== undefined) {
    if (typeof port !== "number" || !Number.isInteger(port) || port < 1 || port > 65535) {
      fail("port", `must be an integer from 1 to 65535, got ${show(port)}`);
    }
  }
  if (user !== undefined) validateLoginUser(user, "user");
}

function validateLoginUser(user: unknown, field: string): void {
  checkString(user, field);
  if (user.length === 0) fail(field, "must not be empty (omit it to let the transport decide)");
  if (user.length > MAX_USER_LENGTH) fail(field, `must be at most ${MAX_USER_LENGTH} characters, got ${user.length}`);
  if (user.startsWith("-")) fail(field, `must not start with "-"`);
  if (SPACE_OR_CONTROL.test(user)) fail(field, "must not contain whitespace or control characters");
  const bad = USER_FORBIDDEN.exec(user);
  if (bad) fail(field, `must not contain ${JSON.stringify(bad[0])}`);
}

/**
 * Validate an account name for `chown`/`chgrp`/`sudo -u`: a POSIX-style name or a numeric id.
 * `allowUidForm` also accepts sudo's `#1000`.
 */
export function validateAccountName(value: unknown, field: string, target?: Target, allowUidForm = false): void {
  checkString(value, field, target);
  checkNoNul(value, field, target);
  if (value.length === 0) fail(field, "must not be empty", target);
  if (value.length > MAX_USER_LENGTH) fail(field, `must be at most ${MAX_USER_LENGTH} characters`, target);
  if (NUMERIC_ID.test(value) || ACCOUNT_NAME.test(value)) return;
  if (allowUidForm && /^#[0-9]+$/.test(value)) return;
  fail(
    field,
    `must be an account name (letters, digits, "_", ".", "-", not starting with a digit or "-") or a numeric id${allowUidForm ? ' (or "#uid")' : ""}`,
    target,
  );
}

/** Validate an env map: names `^[A-Za-z_][A-Za-z0-9_]*$`, values strings without NUL. Values never appear in messages. */
export function validateEnv(env: unknown, target?: Target): void {
  if (env === undefined) return;
  if (typeof env !== "object" || env === null || Array.isArray(env)) {
    fail("env", `must be an object of name → value strings, got ${describe(env)}`, target);
  }
  for (const [name, value] of Object.entries(env)) {
    if (!ENV_NAME.test(name)) {
      fail("env", `invalid variable name ${show(name)}: names match ^[A-Za-z_][A-Za-z0-9_]*$`, target);
    }
    checkString(value, `env.${name}`, target);
    checkNoNul(value, `env.${name}`, target);
  }
}

/** Validate a path (`workingDir`, `source`, `destination`): a non-empty string without NUL. */
export function validatePath(path: unknown, field: string, target?: Target): void {
  checkString(path, field, target);
  if (path.length === 0) fail(field, "must not be empty", target);
  checkNoNul(path, field, target);
}

/**
 * Validate `sudo`: `true`/`false`, or `{ user?, password? }`. The password must be a non-empty string
 * without NUL or line breaks (sudo reads it up to the first line break). It never appears in a message.
 */
export function validateSudo(sudo: unknown, target?: Target): void {
  if (sudo === undefined || typeof sudo === "boolean") return;
  if (typeof sudo !== "object" || sudo === null || Array.isArray(sudo)) {
    fail("sudo", `must be true, false or { user?, password? }, got ${describe(sudo)}`, target);
  }
  const { user, password } = sudo as SudoOptions;
  if (user !== undefined) validateAccountName(user, "sudo.user", target, true);
  if (password !== undefined) {
    if (typeof password !== "string") fail("sudo.password", `must be a string, got ${describe(password)}`, target);
    if (password.length === 0) fail("sudo.password", "must not be empty (omit it to use sudo -n)", target);
    if (password.includes("\0")) fail("sudo.password", "must not contain a NUL byte", target);
    if (LONE_SURROGATE.test(password)) fail("sudo.password", "must be valid Unicode (it holds a lone UTF-16 surrogate)", target);
    if (/[\r\n]/.test(password)) {
      fail("sudo.password", "must not contain a line break (sudo reads the password up to the first one)", target);
    }
  }
}

/** Validate a timeout in milliseconds: positive, finite, at most `MAX_TIMEOUT_MS`. */
export function validateTimeout(timeout: unknown, field = "timeout", target?: Target): void {
  if (timeout === undefined) return;
  if (typeof timeout !== "number" || !Number.isFinite(timeout) || timeout <= 0) {
    fail(field, `must be a positive finite number of milliseconds, got ${show(timeout)}`, target);
  }
  if (timeout > MAX_TIMEOUT_MS) fail(field, `must be at most ${MAX_TIMEOUT_MS} ms (about 24.8 days), got ${timeout}`, target);
}

function validateMaxOutputBytes(value: unknown, target?: Target): void {
  if (value === undefined) return;
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 0) {
    fail("maxOutputBytes", `must be a non-negative integer number of bytes, got ${show(value)}`, target);
  }
}

function validateSignal(signal: unknown, target?: Target): void {
  if (signal === undefined) return;
  const candidate = signal as { aborted?: unknown; addEventListener?: unknown } | null;
  if (typeof candidate !== "object" || candidate === null || typeof candidate.aborted !== "boolean" || typeof candidate.addEventListener !== "function") {
    fail("signal", "must be an AbortSignal", target);
  }
}

function validatePty(pty: unknown, target?: Target): void {
  if (pty === undefined || typeof pty === "boolean") return;
  if (typeof pty !== "object" || pty === null || Array.isArray(pty)) {
    fail("pty", `must be true, false or { rows?, cols?, term? }, got ${describe(pty)}`, target);
  }
  const { rows, cols, term } = pty as Fields;
  for (const [name, value] of [
    ["rows", rows],
    ["cols", cols],
  ] as const) {
    if (value !== undefined && (typeof value !== "number" || !Number.isInteger(value) || value < 1 || value > 65535)) {
      fail(`pty.${name}`, "must be an integer from 1 to 65535", target);
    }
  }
  if (term !== undefined && (typeof term !== "string" || !TERM_NAME.test(term))) {
    fail("pty.term", "must be a terminal name such as xterm-256color", target);
  }
}

function validateStdin(stdin: unknown, target?: Target): void {
  if (stdin === undefined || typeof stdin === "string" || stdin instanceof Uint8Array) return;
  const stream = stdin as { pipe?: unknown; on?: unknown } | null;
  if (typeof stream === "object" && stream !== null && typeof stream.pipe === "function" && typeof stream.on === "function") return;
  fail("stdin", `must be a string, a Uint8Array or a readable stream, got ${describe(stdin)}`, target);
}

function validateArgs(args: unknown, target?: Target): void {
  if (args === undefined) return;
  if (!Array.isArray(args)) fail("args", `must be an array of strings, got ${describe(args)}`, target);
  args.forEach((arg: unknown, index) => {
    checkString(arg, `args[${index}]`, target);
    checkNoNul(arg, `args[${index}]`, target);
  });
}

/**
 * Validate an interpreter: an absolute path (`/usr/bin/python3`) or a plain name looked up on the host's
 * PATH (`python3`). No spaces, quotes or options — extra words go in `args`. `field` names it in the error
 * (`"shell"` for `Command.shell`).
 */
export function validateInterpreter(interpreter: unknown, target?: Target, field = "interpreter"): void {
  if (interpreter === undefined) return;
  checkString(interpreter, field, target);
  checkNoNul(interpreter, field, target);
  if (interpreter.length === 0) fail(field, "must not be empty (omit it to use the shebang or /bin/sh)", target);
  if (interpreter.startsWith("/")) {
    if (!ABSOLUTE_INTERPRETER.test(interpreter) || interpreter === "/") {
      fail(field, "an absolute path may hold only letters, digits and . _ + / - (no spaces or quotes)", target);
    }
    return;
  }
  if (!PLAIN_INTERPRETER.test(interpreter)) {
    fail(field, "must be an absolute path or a plain command name (letters, digits, . _ + -), with no spaces: pass extra words in args", target);
  }
  if (interpreter.startsWith("-")) fail(field, `must not start with "-"`, target);
  if (interpreter === "." || interpreter === "..") fail(field, "must name a program", target);
}

/**
 * Parse a file mode: `"0755"`, `"755"`, `"0o755"` or a number such as `0o755`. Returns the number.
 * Throws `ValidationError` (field `field`) for anything else, digits 8/9, or a value above `0o7777`.
 * @example parseMode("0755") === 0o755; parseMode(0o644) === 420
 */
export function parseMode(mode: string | number, field = "mode", target?: Target): number {
  if (typeof mode === "number") {
    if (!Number.isInteger(mode) || mode < 0 || mode > 0o7777) {
      fail(field, `must be an integer from 0 to 0o7777, got ${mode}`, target);
    }
    return mode;
  }
  if (typeof mode !== "string") fail(field, `must be an octal string like "0755" or a number, got ${describe(mode)}`, target);
  const digits = mode.startsWith("0o") ? mode.slice(2) : mode;
  if (!/^[0-7]{1,5}$/.test(digits)) {
    fail(field, `must be an octal mode like "0755" or "755" (digits 0-7), got ${show(mode)}`, target);
  }
  const value = Number.parseInt(digits, 8);
  if (value > 0o7777) fail(field, `must be at most 07777, got ${show(mode)}`, target);
  return value;
}

function validateOperation(request: Fields & Target): Target {
  validateTarget(request);
  const target = copyTarget(request);
  validateTimeout(request.timeout, "timeout", target);
  validateSignal(request.signal, target);
  return target;
}

/** Everything a command and a script share beyond the target. */
function validateExecution(request: Fields, target: Target): void {
  validateEnv(request.env, target);
  if (request.workingDir !== undefined) validatePath(request.workingDir, "workingDir", target);
  validateSudo(request.sudo, target);
  checkBoolean(request.idempotent, "idempotent", target);
  checkBoolean(request.check, "check", target);
  checkFunction(request.onStdout, "onStdout", target);
  checkFunction(request.onStderr, "onStderr", target);
  validateMaxOutputBytes(request.maxOutputBytes, target);
}

/** Validate a `Command` before any I/O. Throws `ValidationError` naming the field. */
export function validateCommand(command: Command): void {
  if (typeof command !== "object" || command === null) fail("command", "a command object is required");
  const target = validateOperation(command as unknown as Fields & Target);
  checkString(command.cmd, "cmd", target);
  if (command.cmd.trim().length === 0) fail("cmd", "must not be empty", target);
  checkNoNul(command.cmd, "cmd", target);
  validateExecution(command as unknown as Fields, target);
  validateStdin(command.stdin, target);
  validatePty(command.pty, target);
  validateInterpreter(command.shell, target, "shell");
}

/** Validate a `Script` before any I/O. Throws `ValidationError` naming the field. */
export function validateScript(script: Script): void {
  if (typeof script !== "object" || script === null) fail("script", "a script object is required");
  const target = validateOperation(script as unknown as Fields & Target);
  checkString(script.content, "content", target);
  if (script.content.trim().length === 0) fail("content", "must not be empty", target);
  validateInterpreter(script.interpreter, target);
  validateArgs(script.args, target);
  validateStdin(script.stdin, target);
  validateExecution(script as unknown as Fields, target);
}

/** Validate a `Transfer` before any I/O. Throws `ValidationError` naming the field. */
export function validateTransfer(transfer: Transfer): void {
  if (typeof transfer !== "object" || transfer === null) fail("transfer", "a transfer object is required");
  const target = validateOperation(transfer as unknown as Fields & Target);
  validatePath(transfer.source, "source", target);
  validatePath(transfer.destination, "destination", target);
  if (transfer.direction !== "upload" && transfer.direction !== "download") {
    fail("direction", `must be "upload" or "download", got ${show(transfer.direction)}`, target);
  }
  if (transfer.mode !== undefined) parseMode(transfer.mode, "mode", target);
  if (transfer.owner !== undefined) validateAccountName(transfer.owner, "owner", target);
  if (transfer.group !== undefined) validateAccountName(transfer.group, "group", target);
  validateSudo(transfer.sudo, target);
  checkBoolean(transfer.recursive, "recursive", target);
  const overwrite: unknown = transfer.overwrite;
  if (overwrite !== undefined && overwrite !== "replace" && overwrite !== "skip" && overwrite !== "error") {
    fail("overwrite", `must be "replace", "skip" or "error", got ${show(overwrite)}`, target);
  }
  const verify: unknown = transfer.verify;
  if (verify !== undefined && verify !== false && verify !== "sha256") {
    fail("verify", `must be "sha256" or false, got ${show(verify)}`, target);
  }
  checkFunction(transfer.onProgress, "onProgress", target);
}
