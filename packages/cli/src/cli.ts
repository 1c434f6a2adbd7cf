/**
 * The `tunnel` command line: parses arguments with commander, picks the hosts, builds the stack, runs the operation
 * on every host at once (up to `--concurrency`), prints live output, progress, a summary or one JSON document, and
 * returns the exit status (see `ExitCode`).
 */
import { mkdir, readFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { basename, dirname } from "node:path";
import { Command, CommanderError, InvalidArgumentError, Option } from "commander";
import { Redactor, TunnelError, retryAttempts } from "@tunnel-sh/core";
import type { Progress, Result, SudoOptions, TransferResult } from "@tunnel-sh/core";
import { describeTarget, parseHostList, parsePort, withDefaults, type HostEntry } from "./hosts.js";
import { ENV_NAME, loadInventory, selectHosts } from "./inventory.js";
import {
  ExitCode,
  PrefixWriter,
  exitCodeFor,
  formatBytes,
  formatDuration,
  formatJson,
  formatSummary,
  useColor,
  type HostOutcome,
  type OutputStream,
} from "./output.js";
import { BarProgress, NoProgress, SharedTerminal, type TransferProgress } from "./progress.js";
import { promptHidden, type TerminalInput } from "./prompt.js";
import { makeStack, type Stack, type TransportName } from "./stack.js";
import { InterruptedError, UsageError } from "./usage-error.js";

/** What the CLI reads and writes. `bin.ts` passes the process's; tests pass their own. */
export interface CliIo {
  readonly stdout: OutputStream;
  readonly stderr: OutputStream;
  /** For `--ask-sudo-pass`: a terminal. */
  readonly stdin?: TerminalInput | undefined;
  /** Environment variables (for `--sudo-pass-env`, `NO_COLOR`). */
  readonly env: Readonly<Record<string, string | undefined>>;
  /** Aborted when the user interrupts (Ctrl-C): every operation is cancelled and its remote process stopped. */
  readonly interrupt?: AbortSignal | undefined;
}

/** Options every command takes. */
interface CommonOptions {
  readonly hosts?: string[];
  readonly inventory?: string;
  readonly group?: string[];
  readonly user?: string;
  readonly port?: number;
  readonly sshConfig?: string;
  readonly identity?: string;
  readonly knownHosts?: string;
  readonly insecureAcceptAnyHostKey?: boolean;
  readonly transport: TransportName;
  readonly concurrency: number;
  readonly retries?: number;
  readonly timeout?: number;
  readonly json?: boolean;
  readonly verbose: number;
}

interface SudoCliOptions {
  readonly sudo?: boolean;
  readonly sudoUser?: string;
  readonly askSudoPass?: boolean;
  readonly sudoPassEnv?: string;
}

interface ExecOptions extends CommonOptions, SudoCliOptions {
  readonly env?: string[];
  readonly cwd?: string;
  readonly interpreter?: string;
}

interface TransferOptions extends CommonOptions, SudoCliOptions {
  readonly verify?: boolean;
  readonly recursive?: boolean;
  readonly overwrite?: "replace" | "skip" | "error";
  readonly mode?: string;
  readonly chown?: string;
}

const require = createRequire(import.meta.url);
const VERSION = (require("../package.json") as { version: string }).version;

function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

function collectList(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), ...value.split(",").map((part) => part.trim()).filter((part) => part !== "")];
}

function positiveInteger(max: number) {
  return (value: string): number => {
    if (!/^\d+$/.test(value) || Number(value) < 1 || Number(value) > max) throw new InvalidArgumentError(`must be an integer from 1 to ${max}`);
    return Number(value);
  };
}

function retriesValue(value: string): number {
  if (!/^\d+$/.test(value) || Number(value) > 100) throw new InvalidArgumentError("must be an integer from 0 to 100");
  return Number(value);
}

function portValue(value: string): number {
  try {
    return parsePort(value, "port");
  } catch (error) {
    throw new InvalidArgumentError(error instanceof Error ? error.message : String(error));
  }
}

/**
 * A duration: `500ms`, `30s`, `5m`, `1h`; a plain number means seconds.
 * @example parseDuration("1.5m") // 90000
 */
export function parseDuration(text: string): number {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(text.trim());
  if (!match) throw new InvalidArgumentError(`"${text}" is not a duration (e.g. 500ms, 30s, 5m, 1h)`);
  const factor = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[match[2] ?? "s"] ?? 1000;
  const ms = Math.round(Number(match[1]) * factor);
  if (ms <= 0) throw new InvalidArgumentError("must be longer than 0");
  if (ms > 24 * 3_600_000) throw new InvalidArgumentError("must be at most 24h");
  return ms;
}

/**
 * `--env` values: `NAME=value` (the value may hold `=`; it may be empty).
 * @example parseEnvAssignments(["LC_ALL=C", "GREETING=a=b"]) // { LC_ALL: "C", GREETING: "a=b" }
 */
export function parseEnvAssignments(values: readonly string[]): Record<string, string> {
  const env: Record<string, string> = {};
  for (const value of values) {
    const equals = value.indexOf("=");
    if (equals <= 0) throw new UsageError(`--env ${JSON.stringify(value)}: expected NAME=value`);
    const name = value.slice(0, equals);
    if (!ENV_NAME.test(name)) throw new UsageError(`--env: "${name}" is not a valid variable name (letters, digits, _; not starting with a digit)`);
    env[name] = value.slice(equals + 1);
  }
  return env;
}

function addHostOptions(command: Command): Command {
  return command
    .option("-H, --hosts <list>", "hosts, comma-separated: host, user@host:port, [v6addr]:port, or ssh_config aliases; with -i, name patterns (* and ?)", collect)
    .option("-i, --inventory <file>", "inventory file (YAML or JSON) with hosts, groups and vars")
    .option("-g, --group <name>", "inventory group(s) to run on (repeatable, or comma-separated)", collectList)
    .option("-l, --user <user>", "login user for hosts that name none")
    .option("-p, --port <port>", "port for hosts that name none", portValue)
    .option("-F, --ssh-config <file>", "ssh_config file (default ~/.ssh/config)")
    .option("-I, --identity <file>", "private key file")
    .option("--known-hosts <file>", "known_hosts file to verify host keys against (default ~/.ssh/known_hosts)")
    .option("--insecure-accept-any-host-key", "do not verify host keys (throwaway hosts only)")
    .addOption(new Option("--transport <name>", "how to reach hosts").choices(["ssh2", "openssh"]).default("ssh2"))
    .option("-c, --concurrency <n>", "hosts to work on at once", positiveInteger(1000), 10)
    .option("--retries <n>", "retries of failures that are safe to repeat (connect, channel)", retriesValue)
    .option("-t, --timeout <duration>", "time limit per host (500ms, 30s, 5m, 1h; a plain number is seconds)", parseDuration)
    .option("--json", "print one JSON document with every host's result (no live output, no progress bars)")
    .option("-v, --verbose", "trace operations on stderr (-vv: also connections and the pool)", (_value: string, previous: number) => previous + 1, 0);
}

function addSudoOptions(command: Command): Command {
  return command
    .option("--sudo", "run through sudo (as root unless --sudo-user)")
    .option("-u, --sudo-user <user>", "run through sudo as this user (implies --sudo)")
    .option("--ask-sudo-pass", "ask for the sudo password on the terminal (implies --sudo)")
    .option("--sudo-pass-env <var>", "read the sudo password from this environment variable (implies --sudo)");
}

function addExecOptions(command: Command): Command {
  return addSudoOptions(command)
    .option("-e, --env <name=value>", "environment variable for the command (repeatable)", collect)
    .option("--cwd <dir>", "working directory on the host");
}

function addTransferOptions(command: Command): Command {
  return command
    .option("--verify", "verify the copy with sha256")
    .option("-r, --recursive", "transfer a directory tree")
    .addOption(new Option("--overwrite <policy>", "when the destination exists").choices(["replace", "skip", "error"]).default("replace"));
}

/** Run the `tunnel` command line (`argv` without `node` and the script). Resolves with the exit status. */
export async function runCli(argv: readonly string[], io: CliIo): Promise<number> {
  let status: number = ExitCode.OK;
  const program = new Command("tunnel")
    .description("Run commands, scripts and file transfers on remote hosts over SSH.")
    .version(VERSION, "-V, --version")
    .enablePositionalOptions()
    .exitOverride()
    .configureOutput({
      writeOut: (text) => io.stdout.write(text),
      writeErr: (text) => io.stderr.write(text),
    })
    .addHelpText(
      "after",
      `
Exit status: 0 all hosts succeeded; 1 a command exited non-zero on some host; 2 usage error (nothing ran);
3 some host failed otherwise (connection, authentication, timeout, transfer); 130 interrupted (Ctrl-C).

Examples:
  tunnel run -H web-1,deploy@web-2:2222 -e LC_ALL=C -- systemctl status nginx
  tunnel script -i inventory.yaml -g app deploy.sh -- --release 42
  tunnel put -i inventory.yaml -g app --verify --mode 0755 ./myapp /tmp/myapp-new
  tunnel get -H web-1,web-2 /var/log/nginx/error.log './logs/{host}.log'
  tunnel demo`,
    );

  addExecOptions(
    addHostOptions(
      program
        .command("run")
        .description("run a shell command on every host")
        .argument("<command...>", "the command line (options go before it; or after --)")
        .passThroughOptions(),
    ),
  ).action(async (words: string[], _options: unknown, command: Command) => {
    const options = command.opts<ExecOptions>();
    status = await runCommandOnHosts(io, options, words.join(" "));
  });

  addExecOptions(
    addHostOptions(
      program
        .command("script")
        .description("run a local script file on every host (uploaded to a private temp folder, removed afterwards)")
        .argument("<file>", "the script file")
        .argument("[args...]", "arguments for the script (after --)")
        .passThroughOptions()
        .option("--interpreter <path>", "interpreter (default: the script's shebang, else /bin/sh)"),
    ),
  ).action(async (file: string, args: string[], _options: unknown, command: Command) => {
    const options = command.opts<ExecOptions>();
    // Options end at the file; a `--` right after it only separates the script's arguments.
    status = await runScriptOnHosts(io, options, file, args[0] === "--" ? args.slice(1) : args);
  });

  addTransferOptions(
    addSudoOptions(
      addHostOptions(
        program
          .command("put")
          .description("upload a file (or with -r a directory) to every host")
          .argument("<local>", "local file or directory")
          .argument("<remote>", "remote destination path; {host} is replaced by the host's name")
          .option("--mode <mode>", "file mode to set, octal (e.g. 0755)")
          .option("--chown <owner[:group]>", "owner (and group) to set; needs --sudo unless you log in as root"),
      ),
    ),
  ).action(async (local: string, remote: string, _options: unknown, command: Command) => {
    const options = command.opts<TransferOptions>();
    status = await transferOnHosts(io, options, "upload", local, remote);
  });

  addTransferOptions(
    addHostOptions(
      program
        .command("get")
        .description("download a file (or with -r a directory) from every host; with several hosts put {host} in the local path")
        .argument("<remote>", "remote file or directory")
        .argument("<local>", "local destination; {host} is replaced by the host's name"),
    ),
  ).action(async (remote: string, local: string, _options: unknown, command: Command) => {
    const options = command.opts<TransferOptions>();
    status = await transferOnHosts(io, options, "download", remote, local);
  });

  program
    .command("demo")
    .description("start a throwaway SSH server on 127.0.0.1 and run tunnel's usage examples against it")
    .option("--json", "trace as JSON lines")
    .action(async (options: { json?: boolean }) => {
      const { runDemo } = await import("./demo.js");
      status = await runDemo({ stdout: io.stdout, stderr: io.stderr, env: io.env, format: options.json ? "json" : "pretty", ...(io.interrupt ? { signal: io.interrupt } : {}) });
    });

  try {
    await program.parseAsync([...argv], { from: "user" });
    return status;
  } catch (error) {
    return reportFailure(io, error);
  }
}

function reportFailure(io: CliIo, error: unknown): number {
  if (error instanceof CommanderError) return error.exitCode === 0 ? ExitCode.OK : ExitCode.USAGE;
  if (error instanceof InterruptedError) {
    io.stderr.write("tunnel: interrupted\n");
    return ExitCode.INTERRUPTED;
  }
  if (error instanceof UsageError) {
    io.stderr.write(`tunnel: ${error.message}\n`);
    return ExitCode.USAGE;
  }
  if (TunnelError.is(error) && (error.code === "CONFIG" || error.code === "VALIDATION")) {
    io.stderr.write(`tunnel: ${error.message}\n`);
    return ExitCode.USAGE;
  }
  io.stderr.write(`tunnel: unexpected error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  return ExitCode.INTERNAL;
}

/** The hosts `-H` / `-i` / `-g` name, with `-l` / `-p` applied. */
export async function resolveHosts(options: Pick<CommonOptions, "hosts" | "inventory" | "group" | "user" | "port">): Promise<HostEntry[]> {
  let hosts: HostEntry[];
  if (options.inventory !== undefined) {
    const inventory = await loadInventory(options.inventory);
    const patterns = (options.hosts ?? []).flatMap((value) => value.split(",").map((part) => part.trim()).filter((part) => part !== ""));
    hosts = selectHosts(inventory, { groups: options.group ?? [], patterns });
  } else {
    if ((options.group ?? []).length > 0) throw new UsageError("-g/--group needs an inventory (-i)");
    hosts = parseHostList(options.hosts ?? []);
  }
  if (hosts.length === 0) throw new UsageError("no hosts: name them with -H host1,host2 or -i inventory.yaml");
  return withDefaults(hosts, { user: options.user, port: options.port });
}

/** The sudo request from the options; the password comes from the terminal or an environment variable, never argv. */
async function resolveSudo(io: CliIo, options: SudoCliOptions): Promise<boolean | SudoOptions | undefined> {
  if (options.askSudoPass && options.sudoPassEnv !== undefined) throw new UsageError("use either --ask-sudo-pass or --sudo-pass-env, not both");
  const wanted = options.sudo === true || options.sudoUser !== undefined || options.askSudoPass === true || options.sudoPassEnv !== undefined;
  if (!wanted) return undefined;
  let password: string | undefined;
  if (options.sudoPassEnv !== undefined) {
    password = io.env[options.sudoPassEnv];
    if (password === undefined || password === "") throw new UsageError(`--sudo-pass-env: the environment variable ${options.sudoPassEnv} is not set`);
  } else if (options.askSudoPass) {
    password = await promptHidden("sudo password: ", io.stdin, io.stderr);
    if (password === "") throw new UsageError("--ask-sudo-pass: empty password");
  }
  if (options.sudoUser === undefined && password === undefined) return true;
  return { ...(options.sudoUser !== undefined ? { user: options.sudoUser } : {}), ...(password !== undefined ? { password } : {}) };
}

interface Session {
  readonly hosts: readonly HostEntry[];
  readonly stack: Stack;
  readonly json: boolean;
  readonly prefix: PrefixWriter;
  readonly redactor: Redactor;
  /** stderr, shared by traces and progress bars. */
  readonly terminal: SharedTerminal;
}

/** Hosts and connection options, checked before anything is asked (a password) or opened. */
async function prepareHosts(options: CommonOptions): Promise<HostEntry[]> {
  if (options.insecureAcceptAnyHostKey && options.knownHosts !== undefined) {
    throw new UsageError("--known-hosts and --insecure-accept-any-host-key contradict each other; use one");
  }
  return resolveHosts(options);
}

function openSession(io: CliIo, options: CommonOptions, hosts: readonly HostEntry[], redactor: Redactor): Session {
  const terminal = new SharedTerminal(io.stderr);
  const stack = makeStack(
    {
      transport: options.transport,
      identity: options.identity,
      knownHosts: options.knownHosts,
      insecureAcceptAnyHostKey: options.insecureAcceptAnyHostKey,
      sshConfig: options.sshConfig,
      concurrency: options.concurrency,
      retries: options.retries,
      timeout: options.timeout,
      verbosity: options.verbose,
      traceStream: terminal,
      env: io.env,
    },
    redactor,
  );
  return { hosts, stack, json: options.json === true, redactor, terminal, prefix: new PrefixWriter(hosts.map((host) => host.name), useColor(io.stdout, io.env)) };
}

/** Run `work` for every host, at most `limit` at once; results keep the hosts' order. */
export async function forEachHost<T>(hosts: readonly HostEntry[], limit: number, work: (host: HostEntry) => Promise<T>): Promise<T[]> {
  const results: T[] = new Array<T>(hosts.length);
  let next = 0;
  const worker = async () => {
    while (next < hosts.length) {
      const index = next++;
      const host = hosts[index];
      if (host) results[index] = await work(host);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, hosts.length) }, worker));
  return results;
}

function errorOutcome(host: HostEntry, error: unknown, startedAt: number, redactor: Redactor): HostOutcome {
  const tunnel = TunnelError.is(error);
  const message = redactor.redact(error instanceof Error ? error.message : String(error));
  return {
    name: host.name,
    target: describeTarget(host.target),
    ok: false,
    exitCode: null,
    signal: null,
    durationMs: Math.round(performance.now() - startedAt),
    attempts: retryAttempts(error) ?? (tunnel && error.code === "RETRIES_EXHAUSTED" ? (error as TunnelError & { attempts: number }).attempts : 1),
    error: {
      code: tunnel ? error.code : "ERROR",
      message,
      phase: tunnel ? error.phase : undefined,
      retryable: tunnel ? error.retryable : false,
    },
  };
}

function resultOutcome(host: HostEntry, result: Result): HostOutcome {
  return {
    name: host.name,
    target: describeTarget(host.target),
    ok: result.exitCode === 0,
    exitCode: result.exitCode,
    signal: result.signal,
    durationMs: Math.round(result.durationMs),
    attempts: result.attempts,
    stdout: result.stdout,
    stderr: result.stderr,
    truncated: result.truncated,
  };
}

/**
 * The shared frame: open the session, run `work` on every host with a signal that Ctrl-C aborts, close the pool,
 * then print the summary or the JSON document. Resolves with the exit status.
 */
async function onEveryHost(
  io: CliIo,
  commandName: string,
  options: CommonOptions,
  hosts: readonly HostEntry[],
  redactor: Redactor,
  work: (session: Session, host: HostEntry, signal: AbortSignal, startedAt: number) => Promise<HostOutcome>,
  hooks: { readonly before?: (session: Session) => void; readonly after?: (session: Session) => void } = {},
): Promise<number> {
  const session = openSession(io, options, hosts, redactor);
  const controller = new AbortController();
  let interrupted = false;
  const onInterrupt = () => {
    if (interrupted) return;
    interrupted = true;
    io.stderr.write("\ntunnel: interrupted; cancelling and stopping the remote processes\n");
    controller.abort();
  };
  io.interrupt?.addEventListener("abort", onInterrupt, { once: true });
  if (io.interrupt?.aborted) onInterrupt();
  let outcomes: HostOutcome[] = [];
  try {
    hooks.before?.(session);
    outcomes = await forEachHost(session.hosts, options.concurrency, async (host) => {
      const startedAt = performance.now();
      try {
        return await work(session, host, controller.signal, startedAt);
      } catch (error) {
        return errorOutcome(host, error, startedAt, redactor);
      }
    });
  } finally {
    hooks.after?.(session);
    io.interrupt?.removeEventListener("abort", onInterrupt);
    await session.stack.close();
  }
  if (session.json) io.stdout.write(formatJson(commandName, outcomes, interrupted));
  else io.stderr.write(`\n${formatSummary(outcomes)}`);
  return exitCodeFor(outcomes, interrupted);
}

function liveOutput(io: CliIo, session: Session, host: HostEntry) {
  if (session.json) return { listeners: {}, flush: () => undefined };
  return {
    listeners: {
      onStdout: (text: string) => session.prefix.write(io.stdout, host.name, "stdout", text),
      onStderr: (text: string) => session.prefix.write(io.stderr, host.name, "stderr", text),
    },
    flush: () => {
      session.prefix.flush(io.stdout, host.name, "stdout");
      session.prefix.flush(io.stderr, host.name, "stderr");
    },
  };
}

function sudoRedactor(sudo: boolean | SudoOptions | undefined): Redactor {
  const redactor = new Redactor();
  if (typeof sudo === "object" && sudo.password !== undefined) redactor.add(sudo.password);
  return redactor;
}

async function runCommandOnHosts(io: CliIo, options: ExecOptions, cmd: string): Promise<number> {
  if (cmd.trim() === "") throw new UsageError("run: the command is empty");
  const env = parseEnvAssignments(options.env ?? []);
  const hosts = await prepareHosts(options);
  const sudo = await resolveSudo(io, options);
  return onEveryHost(io, "run", options, hosts, sudoRedactor(sudo), async (session, host, signal) => {
    const live = liveOutput(io, session, host);
    try {
      const result = await session.stack.executor.runCommand({
        ...host.target,
        cmd,
        env: { ...host.vars, ...env },
        ...(options.cwd !== undefined ? { workingDir: options.cwd } : {}),
        ...(sudo !== undefined ? { sudo } : {}),
        ...(options.timeout !== undefined ? { timeout: options.timeout } : {}),
        signal,
        ...live.listeners,
      });
      return resultOutcome(host, result);
    } finally {
      live.flush();
    }
  });
}

async function runScriptOnHosts(io: CliIo, options: ExecOptions, file: string, args: readonly string[]): Promise<number> {
  let content: string;
  try {
    content = await readFile(file, "utf8");
  } catch (error) {
    throw new UsageError(`script ${file}: cannot read it (${(error as NodeJS.ErrnoException).code ?? String(error)})`);
  }
  const env = parseEnvAssignments(options.env ?? []);
  const hosts = await prepareHosts(options);
  const sudo = await resolveSudo(io, options);
  return onEveryHost(io, "script", options, hosts, sudoRedactor(sudo), async (session, host, signal) => {
    const live = liveOutput(io, session, host);
    try {
      const result = await session.stack.executor.runScript({
        ...host.target,
        content,
        args,
        ...(options.interpreter !== undefined ? { interpreter: options.interpreter } : {}),
        env: { ...host.vars, ...env },
        ...(options.cwd !== undefined ? { workingDir: options.cwd } : {}),
        ...(sudo !== undefined ? { sudo } : {}),
        ...(options.timeout !== undefined ? { timeout: options.timeout } : {}),
        signal,
        ...live.listeners,
      });
      return resultOutcome(host, result);
    } finally {
      live.flush();
    }
  });
}

/** `owner[:group]` from `--chown`. */
function parseChown(value: string | undefined): { owner?: string; group?: string } {
  if (value === undefined) return {};
  const [owner, group, extra] = value.split(":");
  if (extra !== undefined || (owner === "" && (group === undefined || group === ""))) throw new UsageError(`--chown "${value}": expected owner, owner:group or :group`);
  return { ...(owner ? { owner } : {}), ...(group ? { group } : {}) };
}

/** A destination path for one host: `{host}` becomes the host's name. */
export function pathForHost(template: string, host: HostEntry): string {
  return template.split("{host}").join(host.name.replace(/[/\\]/g, "_"));
}

async function transferOnHosts(io: CliIo, options: TransferOptions, direction: "upload" | "download", source: string, destination: string): Promise<number> {
  const ownership = parseChown(options.chown);
  const hosts = await prepareHosts(options);
  if (direction === "download" && hosts.length > 1 && !destination.includes("{host}")) {
    throw new UsageError(`get: with ${hosts.length} hosts the local path needs {host} (e.g. './${basename(source)}.{host}')`);
  }
  const sudo = await resolveSudo(io, options);
  let progress: TransferProgress = new NoProgress(io.stderr);
  return onEveryHost(
    io,
    direction === "upload" ? "put" : "get",
    options,
    hosts,
    sudoRedactor(sudo),
    async (session, host, signal) => {
      const target = pathForHost(destination, host);
      if (direction === "download" && destination.includes("{host}")) await mkdir(dirname(target), { recursive: true });
      const onProgress = progress.start(host.name);
      let result: TransferResult;
      try {
        result = await session.stack.executor.transferFile({
          ...host.target,
          direction,
          source,
          destination: target,
          ...(options.verify ? { verify: "sha256" as const } : {}),
          ...(options.recursive ? { recursive: true } : {}),
          ...(options.overwrite !== undefined ? { overwrite: options.overwrite } : {}),
          ...(options.mode !== undefined ? { mode: options.mode } : {}),
          ...ownership,
          ...(sudo !== undefined ? { sudo } : {}),
          ...(options.timeout !== undefined ? { timeout: options.timeout } : {}),
          signal,
          onProgress: (update: Progress) => onProgress(update),
        });
      } catch (error) {
        progress.finish(host.name, undefined);
        if (!session.json) progress.log(`${session.prefix.prefix(host.name)}failed: ${session.redactor.redact(error instanceof Error ? error.message : String(error))}`);
        throw error;
      }
      progress.finish(host.name, result.bytes);
      if (!session.json) {
        const what = direction === "upload" ? "uploaded" : "downloaded";
        const files = result.files === 1 ? "" : ` in ${result.files} files`;
        const skipped = result.skipped > 0 ? `, ${result.skipped} skipped` : "";
        const verified = result.verified ? ", sha256 verified" : "";
        progress.log(`${session.prefix.prefix(host.name)}${what} ${formatBytes(result.bytes)}${files} to ${target} in ${formatDuration(result.durationMs)}${verified}${skipped}`);
      }
      return {
        name: host.name,
        target: describeTarget(host.target),
        ok: true,
        exitCode: null,
        signal: null,
        durationMs: Math.round(result.durationMs),
        attempts: result.attempts,
        transfer: { source, destination: target, bytes: result.bytes, files: result.files, verified: result.verified, skipped: result.skipped },
      };
    },
    {
      before: (session) => {
        if (!session.json && io.stderr.isTTY === true) {
          progress = new BarProgress(io.stderr, session.hosts.map((host) => host.name));
          session.terminal.progress = progress;
        }
      },
      after: () => progress.stop(),
    },
  );
}
