/**
 * Builds tunnel's stack for one CLI run: transport → pool → executor, with one redactor shared by the executor
 * and the console tracer.
 *
 * The transport, the pool and the tracer are imported when a stack is made, and only the ones it uses: `tunnel
 * --help` loads none of them, and a run over ssh2 never loads the OpenSSH transport (nor ssh2 a run over OpenSSH).
 */
import { DefaultExecutorConfig, Executor, NoopTracer, Redactor, rejectUnknownOptions } from "@tunnel-sh/core";
import type { KeyboardInteractiveHandler, SshTransportOptions, Tracer, Transport } from "@tunnel-sh/core";
import type { ConnectionPool } from "@tunnel-sh/pool";
import type { CliIo } from "./cli.js";
import type { CommonOptions } from "./command-options.js";
import type { OutputStream } from "./output.js";
import { terminalKeyboardInteractive, type TerminalInput } from "./prompt.js";

export type TransportName = "ssh2" | "openssh";

export interface StackOptions {
  readonly transport: TransportName;
  /** Private key file (the transports' `identityFile`). */
  readonly identityFile?: string | undefined;
  /** known_hosts file (the transports' `knownHostsFile`). */
  readonly knownHostsFile?: string | undefined;
  /** Accept any host key: an explicit opt-out for throwaway hosts. */
  readonly insecureAcceptAnyHostKey?: boolean | undefined;
  /** ssh_config file (the transports' `configFile`); default `~/.ssh/config`. */
  readonly configFile?: string | undefined;
  /** Forward the ssh-agent to the hosts (the transports' `forwardAgent`); unset, ssh_config decides. */
  readonly forwardAgent?: boolean | undefined;
  /** Answers keyboard-interactive prompts, e.g. on the terminal (the transports' `onKeyboardInteractive`). */
  readonly onKeyboardInteractive?: KeyboardInteractiveHandler | undefined;
  /** Operations at once. */
  readonly concurrency: number;
  /** Retries after the first attempt, for failures that are safe to repeat. */
  readonly retries?: number | undefined;
  /** Timeout in ms for every operation (commands, scripts and transfers). */
  readonly timeout?: number | undefined;
  /** 0: no trace; 1: every operation; 2: also pool and connect spans. */
  readonly verbosity: number;
  readonly traceFormat?: "pretty" | "json" | undefined;
  /** Where traces go (stderr). */
  readonly traceStream: OutputStream;
  readonly env: Readonly<Record<string, string | undefined>>;
}

export interface Stack {
  readonly executor: Executor;
  readonly pool: ConnectionPool;
  readonly redactor: Redactor;
  close(): Promise<void>;
}

/** Every option name; `satisfies` makes the compiler refuse a list that misses one. */
const STACK_OPTIONS = Object.keys({
  transport: true,
  identityFile: true,
  knownHostsFile: true,
  insecureAcceptAnyHostKey: true,
  configFile: true,
  forwardAgent: true,
  onKeyboardInteractive: true,
  concurrency: true,
  retries: true,
  timeout: true,
  verbosity: true,
  traceFormat: true,
  traceStream: true,
  env: true,
} satisfies Record<keyof StackOptions, true>);

export async function makeTransport(options: StackOptions): Promise<Transport> {
  rejectUnknownOptions(options, STACK_OPTIONS, "makeTransport");
  // Both transports take the same option names, so one object serves either.
  const shared: SshTransportOptions = {
    ...(options.identityFile !== undefined ? { identityFile: options.identityFile } : {}),
    ...(options.knownHostsFile !== undefined ? { knownHostsFile: options.knownHostsFile } : {}),
    ...(options.configFile !== undefined ? { configFile: options.configFile } : {}),
    ...(options.forwardAgent !== undefined ? { forwardAgent: options.forwardAgent } : {}),
    ...(options.onKeyboardInteractive !== undefined ? { onKeyboardInteractive: options.onKeyboardInteractive } : {}),
    hostKeyChecking: options.insecureAcceptAnyHostKey === true ? "insecure-accept-any" : "strict",
  };
  if (options.transport === "openssh") {
    const { OpenSshTransport } = await import("@tunnel-sh/transport-openssh");
    return new OpenSshTransport(shared);
  }
  const { Ssh2Transport } = await import("@tunnel-sh/transport-ssh2");
  return new Ssh2Transport(shared);
}

export async function makeTracer(options: StackOptions, redactor: Redactor): Promise<Tracer> {
  if (options.verbosity <= 0) return new NoopTracer();
  const { ConsoleTracer } = await import("@tunnel-sh/tracer-console");
  return new ConsoleTracer({
    stream: options.traceStream,
    format: options.traceFormat ?? "pretty",
    level: options.verbosity >= 2 ? "debug" : "info",
    colors: options.traceStream.isTTY === true && options.env.NO_COLOR === undefined,
    redactor,
  });
}

export async function makeStack(options: StackOptions, redactor = new Redactor()): Promise<Stack> {
  rejectUnknownOptions(options, STACK_OPTIONS, "makeStack");
  const [transport, tracer, { ConnectionPool, DefaultPoolConfig }] = await Promise.all([
    makeTransport(options),
    makeTracer(options, redactor),
    import("@tunnel-sh/pool"),
  ]);
  const pool = new ConnectionPool(transport, { ...DefaultPoolConfig() }, tracer);
  let config = DefaultExecutorConfig().with({ maxConcurrent: options.concurrency });
  if (options.retries !== undefined) config = config.with({ maxRetries: options.retries });
  if (options.timeout !== undefined) {
    config = config.with({ defaultTimeout: options.timeout, scriptTimeout: options.timeout, transferTimeout: options.timeout });
  }
  const executor = new Executor(pool, config, tracer, { redactor });
  return { executor, pool, redactor, close: () => pool.close() };
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
