/**
 * What `tunnel run`, `script`, `put` and `get` do once their arguments are parsed: pick the hosts, ask for the sudo
 * password if needed, build the stack, run the operation on every host at once (up to `--concurrency`), print live
 * output, progress, a summary or one JSON document, and return the exit status (see `ExitCode`).
 */
import { mkdir, readFile } from "node:fs/promises";
import { basename, dirname } from "node:path";
import { Redactor, TunnelError, retryAttempts } from "@tunnel-sh/core";
import type { Progress, Result, SudoOptions, TransferResult } from "@tunnel-sh/core";
import type { CliIo } from "./cli.js";
import { describeTarget, parseHostList, withDefaults, type HostEntry } from "./hosts.js";
import { ENV_NAME, loadInventory, selectHosts } from "./inventory.js";
import { PrefixWriter, exitCodeFor, formatBytes, formatDuration, formatJson, formatSummary, useColor, type HostOutcome } from "./output.js";
import { NoProgress, SharedTerminal, type TransferProgress } from "./progress.js";
import { promptHidden } from "./prompt.js";
import { makeStack, type Stack, type TransportName } from "./stack.js";
import { UsageError } from "./usage-error.js";

/** Options every command takes. */
export interface CommonOptions {
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

export interface SudoCliOptions {
  readonly sudo?: boolean;
  readonly sudoUser?: string;
  readonly askSudoPass?: boolean;
  readonly sudoPassEnv?: string;
}

export interface ExecOptions extends CommonOptions, SudoCliOptions {
  readonly env?: string[];
  readonly cwd?: string;
  readonly interpreter?: string;
}

export interface TransferOptions extends CommonOptions, SudoCliOptions {
  readonly verify?: boolean;
  readonly recursive?: boolean;
  readonly overwrite?: "replace" | "skip" | "error";
  readonly mode?: string;
  readonly chown?: string;
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

async function openSession(io: CliIo, options: CommonOptions, hosts: readonly HostEntry[], redactor: Redactor): Promise<Session> {
  const terminal = new SharedTerminal(io.stderr);
  const stack = await makeStack(
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
  const session = await openSession(io, options, hosts, redactor);
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

export async function runCommandOnHosts(io: CliIo, options: ExecOptions, cmd: string): Promise<number> {
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

export async function runScriptOnHosts(io: CliIo, options: ExecOptions, file: string, args: readonly string[]): Promise<number> {
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

export async function transferOnHosts(io: CliIo, options: TransferOptions, direction: "upload" | "download", source: string, destination: string): Promise<number> {
  const ownership = parseChown(options.chown);
  const hosts = await prepareHosts(options);
  if (direction === "download" && hosts.length > 1 && !destination.includes("{host}")) {
    throw new UsageError(`get: with ${hosts.length} hosts the local path needs {host} (e.g. './${basename(source)}.{host}')`);
  }
  const sudo = await resolveSudo(io, options);
  // Bars only for a terminal: other runs never load cli-progress.
  const bars = options.json !== true && io.stderr.isTTY === true ? (await import("./bar-progress.js")).BarProgress : undefined;
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
        if (bars !== undefined) {
          progress = new bars(io.stderr, session.hosts.map((host) => host.name));
          session.terminal.progress = progress;
        }
      },
      after: () => progress.stop(),
    },
  );
}
