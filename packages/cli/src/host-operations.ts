/**
 * What `tunnel run`, `script`, `put` and `get` do once their arguments are parsed: pick the hosts, ask for the sudo
 * password if needed, build the stack, run the operation on every host at once (up to `--concurrency`), print live
 * output, progress, a summary or one JSON document, and return the exit status (see `ExitCode`).
 */
import { mkdir, readFile } from "node:fs/promises";
import { basename, dirname } from "node:path";
import { Fleet, Redactor, TunnelError, retryAttempts } from "@tunnel-sh/core";
import type { FleetAmount, FleetEvent, FleetHost, FleetHostResult, FleetOperation, FleetRunner, Progress, Result, SudoOptions } from "@tunnel-sh/core";
import type { CliIo } from "./cli.js";
import { describeTarget, parseHostList, withDefaults, type HostEntry } from "./hosts.js";
import { ENV_NAME, loadInventory, selectHosts } from "./inventory.js";
import { PrefixWriter, exitCodeFor, formatBytes, formatDuration, formatJson, formatSummary, useColor, type HostOutcome, type OutputStream } from "./output.js";
import { NoProgress, SharedTerminal, type TransferProgress } from "./progress.js";
import { promptHidden, terminalKeyboardInteractive, type TerminalInput } from "./prompt.js";
import { makeStack, type StackOptions, type TransportName } from "./stack.js";
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
  readonly forwardAgent?: boolean;
  readonly transport: TransportName;
  readonly concurrency: number;
  readonly retries?: number;
  readonly timeout?: number;
  readonly json?: boolean;
  readonly verbose: number;
  /** Rolling batch sizes (`--serial 1,10%,100%`). */
  readonly serial?: readonly FleetAmount[];
  /** The failure budget (`--max-fail 3` or `10%`). */
  readonly maxFail?: FleetAmount;
}

/** Options of commands that may run through the queue instead of this machine. */
export interface QueueCliOptions {
  /** Submit through the queue on this Redis (`redis://host:6379`) instead of running here. */
  readonly redis?: string;
  readonly queue?: string;
  /** The secret name workers resolve into the sudo password. */
  readonly sudoSecret?: string;
  /** Job ids derived from it: submitting the same run again runs nothing twice. */
  readonly runId?: string;
}

export interface SudoCliOptions {
  readonly sudo?: boolean;
  readonly sudoUser?: string;
  readonly askSudoPass?: boolean;
  readonly sudoPassEnv?: string;
}

export interface ExecOptions extends CommonOptions, SudoCliOptions, QueueCliOptions {
  readonly env?: string[];
  readonly cwd?: string;
  readonly interpreter?: string;
}

export interface TransferOptions extends CommonOptions, SudoCliOptions, QueueCliOptions {
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
async function resolveSudo(io: CliIo, options: SudoCliOptions & QueueCliOptions): Promise<boolean | SudoOptions | undefined> {
  if (options.askSudoPass && options.sudoPassEnv !== undefined) throw new UsageError("use either --ask-sudo-pass or --sudo-pass-env, not both");
  const wanted =
    options.sudo === true || options.sudoUser !== undefined || options.askSudoPass === true || options.sudoPassEnv !== undefined || options.sudoSecret !== undefined;
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
  /** Runs each host's operation: the local executor, or the queue's producer. */
  readonly runner: FleetRunner;
  readonly json: boolean;
  readonly prefix: PrefixWriter;
  readonly redactor: Redactor;
  /** stderr, shared by traces and progress bars. */
  readonly terminal: SharedTerminal;
  readonly env: CliIo["env"];
  /** The terminal second factors are asked on, when stdin is one. */
  readonly stdin: TerminalInput | undefined;
}

/** Hosts and connection options, checked before anything is asked (a password) or opened. */
async function prepareHosts(options: CommonOptions & QueueCliOptions & SudoCliOptions): Promise<HostEntry[]> {
  if (options.insecureAcceptAnyHostKey && options.knownHosts !== undefined) {
    throw new UsageError("--known-hosts and --insecure-accept-any-host-key contradict each other; use one");
  }
  checkQueueOptions(options);
  return resolveHosts(options);
}

/** `--redis` runs on the workers, with their connection settings and secrets: options that only mean something here are refused. */
function checkQueueOptions(options: CommonOptions & QueueCliOptions & SudoCliOptions): void {
  if (options.redis === undefined) {
    for (const [name, value] of [["--queue", options.queue], ["--sudo-secret", options.sudoSecret], ["--run-id", options.runId]] as const) {
      if (value !== undefined) throw new UsageError(`${name} needs --redis`);
    }
    return;
  }
  if (options.askSudoPass || options.sudoPassEnv !== undefined) {
    throw new UsageError("with --redis a password never goes into the queue: give the workers the secret (tunnel worker --secret-env NAME=VAR) and name it with --sudo-secret NAME");
  }
  const local: ReadonlyArray<readonly [string, unknown]> = [
    ["-I/--identity", options.identity],
    ["--known-hosts", options.knownHosts],
    ["--insecure-accept-any-host-key", options.insecureAcceptAnyHostKey],
    ["-A/--forward-agent", options.forwardAgent],
    ["-F/--ssh-config", options.sshConfig],
    ["--retries", options.retries],
  ];
  for (const [name, value] of local) {
    if (value !== undefined && value !== false) throw new UsageError(`${name} is a setting of the workers with --redis (give it to tunnel worker)`);
  }
}

/** The local stack's settings from the command's options; with a terminal `stdin`, second factors are asked there. */
export function stackOptions(options: CommonOptions, terminal: OutputStream, env: CliIo["env"], stdin?: TerminalInput): StackOptions {
  return {
    transport: options.transport,
    identityFile: options.identity,
    knownHostsFile: options.knownHosts,
    insecureAcceptAnyHostKey: options.insecureAcceptAnyHostKey,
    configFile: options.sshConfig,
    forwardAgent: options.forwardAgent,
    onKeyboardInteractive: stdin?.isTTY === true ? terminalKeyboardInteractive(stdin, terminal) : undefined,
    concurrency: options.concurrency,
    retries: options.retries,
    timeout: options.timeout,
    verbosity: options.verbose,
    traceStream: terminal,
    env,
  };
}

function errorOutcome(host: HostEntry, error: unknown, durationMs: number, redactor: Redactor): HostOutcome {
  const tunnel = TunnelError.is(error);
  const message = redactor.redact(error instanceof Error ? error.message : String(error));
  return {
    name: host.name,
    target: describeTarget(host.target),
    ok: false,
    exitCode: null,
    signal: null,
    durationMs: Math.round(durationMs),
    attempts: retryAttempts(error) ?? (tunnel && error.code === "RETRIES_EXHAUSTED" ? (error as TunnelError & { attempts: number }).attempts : 1),
    error: {
      code: tunnel ? error.code : "ERROR",
      message,
      phase: tunnel ? error.phase : undefined,
      retryable: tunnel ? error.retryable : false,
    },
  };
}

function skippedOutcome(host: HostEntry, reason: FleetHostResult["skipReason"]): HostOutcome {
  return {
    name: host.name,
    target: describeTarget(host.target),
    ok: false,
    exitCode: null,
    signal: null,
    durationMs: 0,
    attempts: 0,
    // An interrupted run reports ABORTED for every host it stopped, started or not; SKIPPED is the budget's.
    error: {
      code: reason === "aborted" ? "ABORTED" : "SKIPPED",
      message: reason === "aborted" ? "not started: interrupted" : "not started: the failure budget (--max-fail) was spent",
      phase: undefined,
      retryable: false,
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

/** How a command shows each host live, and what its outcome looks like once the host is done. */
interface HostView {
  /** A host's live event (output, progress, done), for the terminal. */
  onEvent?(session: Session, host: HostEntry, event: FleetEvent): void;
  /** The outcome of a host that ran to a result. */
  outcome?(host: HostEntry, result: FleetHostResult): HostOutcome | undefined;
}

/** What runs the hosts: this machine's executor, or the queue's workers with `--redis`. */
async function openRunner(options: CommonOptions & QueueCliOptions, session: Omit<Session, "runner">, redactor: Redactor): Promise<{ readonly runner: FleetRunner; close(): Promise<void> }> {
  if (options.redis !== undefined) {
    const { QueueProducer } = await import("@tunnel-sh/queue");
    const producer = new QueueProducer({
      redis: options.redis,
      ...(options.queue !== undefined ? { queue: options.queue } : {}),
      ...(options.sudoSecret !== undefined ? { sudoSecret: options.sudoSecret } : {}),
      ...(options.runId !== undefined ? { runId: options.runId } : {}),
    });
    return { runner: producer, close: () => producer.close() };
  }
  const stack = await makeStack(stackOptions(options, session.terminal, session.env, session.stdin), redactor);
  return { runner: stack.executor, close: () => stack.close() };
}

/**
 * The shared frame: a fleet over every host (concurrency, `--serial` batches, `--max-fail` budget) with a signal that
 * Ctrl-C aborts, through this machine's stack or the queue; then the summary or the JSON document. Resolves with the
 * exit status.
 */
async function onEveryHost(
  io: CliIo,
  commandName: string,
  options: CommonOptions & QueueCliOptions,
  hosts: readonly HostEntry[],
  redactor: Redactor,
  operation: (host: HostEntry) => FleetOperation,
  view: HostView = {},
  hooks: { readonly before?: (session: Session) => void; readonly after?: (session: Session) => void } = {},
): Promise<number> {
  const terminal = new SharedTerminal(io.stderr);
  const base = { hosts, json: options.json === true, redactor, terminal, env: io.env, stdin: io.stdin, prefix: new PrefixWriter(hosts.map((host) => host.name), useColor(io.stdout, io.env)) };
  const byName = new Map(hosts.map((host) => [host.name, host]));
  const fleetHosts = hosts.map((host) => ({ ...host.target, name: host.name }));
  const entry = (name: string) => byName.get(name) as HostEntry;
  const controller = new AbortController();
  // Checked before anything is opened: a bad batch size or budget is a usage error, and nothing runs.
  const fleetOptions = {
    hosts: fleetHosts,
    operation: (host: FleetHost) => operation(entry(host.name ?? "")),
    concurrency: options.concurrency,
    ...(options.serial !== undefined ? { serial: options.serial } : {}),
    ...(options.maxFail !== undefined ? { maxFailures: options.maxFail } : {}),
    signal: controller.signal,
  };
  const opened = await openRunner(options, base, redactor);
  const session: Session = { ...base, runner: opened.runner };
  let interrupted = false;
  const onInterrupt = () => {
    if (interrupted) return;
    interrupted = true;
    io.stderr.write("\ntunnel: interrupted; cancelling and stopping the remote processes\n");
    controller.abort();
  };
  io.interrupt?.addEventListener("abort", onInterrupt, { once: true });
  if (io.interrupt?.aborted) onInterrupt();
  let outcomes: HostOutcome[];
  try {
    hooks.before?.(session);
    const run = new Fleet(session.runner).run({
      ...fleetOptions,
      onEvent: (event) => {
        if (event.type === "batch" || event.type === "budget-spent") return;
        const host = entry(event.host);
        if (!session.json && (event.type === "output" || event.type === "done")) liveOutput(io, session, host, event);
        view.onEvent?.(session, host, event);
      },
    });
    const report = await run;
    outcomes = report.hosts.map((result) => {
      const host = entry(result.name);
      if (result.status === "skipped") return skippedOutcome(host, result.skipReason);
      if (result.error !== undefined) return errorOutcome(host, result.error, result.durationMs, redactor);
      const shown = view.outcome?.(host, result);
      if (shown) return shown;
      if (result.result) return resultOutcome(host, result.result);
      return errorOutcome(host, new Error("the operation returned no result"), result.durationMs, redactor);
    });
  } finally {
    hooks.after?.(session);
    io.interrupt?.removeEventListener("abort", onInterrupt);
    await opened.close();
  }
  if (session.json) io.stdout.write(formatJson(commandName, outcomes, interrupted));
  else io.stderr.write(`\n${formatSummary(outcomes)}`);
  return exitCodeFor(outcomes, interrupted);
}

/** `name | line` output as it arrives; what is left of a host's lines once it is done. */
function liveOutput(io: CliIo, session: Session, host: HostEntry, event: FleetEvent): void {
  if (event.type === "output") {
    session.prefix.write(event.stream === "stdout" ? io.stdout : io.stderr, host.name, event.stream, event.text);
  } else if (event.type === "done") {
    session.prefix.flush(io.stdout, host.name, "stdout");
    session.prefix.flush(io.stderr, host.name, "stderr");
  }
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
  return onEveryHost(io, "run", options, hosts, sudoRedactor(sudo), (host) => ({
    type: "command",
    cmd,
    env: { ...host.vars, ...env },
    ...(options.cwd !== undefined ? { workingDir: options.cwd } : {}),
    ...(sudo !== undefined ? { sudo } : {}),
    ...(options.timeout !== undefined ? { timeout: options.timeout } : {}),
  }));
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
  return onEveryHost(io, "script", options, hosts, sudoRedactor(sudo), (host) => ({
    type: "script",
    content,
    args,
    ...(options.interpreter !== undefined ? { interpreter: options.interpreter } : {}),
    env: { ...host.vars, ...env },
    ...(options.cwd !== undefined ? { workingDir: options.cwd } : {}),
    ...(sudo !== undefined ? { sudo } : {}),
    ...(options.timeout !== undefined ? { timeout: options.timeout } : {}),
  }));
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
  const destinations = new Map(hosts.map((host) => [host.name, pathForHost(destination, host)]));
  if (direction === "download" && destination.includes("{host}")) {
    for (const target of new Set([...destinations.values()].map((path) => dirname(path)))) await mkdir(target, { recursive: true });
  }
  const listeners = new Map<string, (update: Progress) => void>();
  return onEveryHost(
    io,
    direction === "upload" ? "put" : "get",
    options,
    hosts,
    sudoRedactor(sudo),
    (host) => ({
      type: "transfer",
      direction,
      source,
      destination: destinations.get(host.name) ?? destination,
      ...(options.verify ? { verify: "sha256" as const } : {}),
      ...(options.recursive ? { recursive: true } : {}),
      ...(options.overwrite !== undefined ? { overwrite: options.overwrite } : {}),
      ...(options.mode !== undefined ? { mode: options.mode } : {}),
      ...ownership,
      ...(sudo !== undefined ? { sudo } : {}),
      ...(options.timeout !== undefined ? { timeout: options.timeout } : {}),
    }),
    {
      onEvent: (session, host, event) => {
        if (event.type === "started") listeners.set(host.name, progress.start(host.name));
        else if (event.type === "progress") listeners.get(host.name)?.(event.progress);
        else if (event.type === "done") {
          const result = event.result;
          progress.finish(host.name, result.transfer?.bytes);
          if (session.json) return;
          if (result.transfer) {
            const transfer = result.transfer;
            const what = direction === "upload" ? "uploaded" : "downloaded";
            const files = transfer.files === 1 ? "" : ` in ${transfer.files} files`;
            const skipped = transfer.skipped > 0 ? `, ${transfer.skipped} skipped` : "";
            const verified = transfer.verified ? ", sha256 verified" : "";
            progress.log(`${session.prefix.prefix(host.name)}${what} ${formatBytes(transfer.bytes)}${files} to ${destinations.get(host.name) ?? destination} in ${formatDuration(transfer.durationMs)}${verified}${skipped}`);
          } else if (result.error !== undefined) {
            progress.log(`${session.prefix.prefix(host.name)}failed: ${session.redactor.redact(result.error.message)}`);
          }
        }
      },
      outcome: (host, result) => {
        const transfer = result.transfer;
        if (!transfer) return undefined;
        return {
          name: host.name,
          target: describeTarget(host.target),
          ok: true,
          exitCode: null,
          signal: null,
          durationMs: Math.round(transfer.durationMs),
          attempts: transfer.attempts,
          transfer: { source, destination: destinations.get(host.name) ?? destination, bytes: transfer.bytes, files: transfer.files, verified: transfer.verified, skipped: transfer.skipped },
        };
      },
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
