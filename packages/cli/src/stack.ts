/**
 * Builds tunnel's stack for one CLI run: transport → pool → executor, with one redactor shared by the executor
 * and the console tracer.
 */
import { DefaultExecutorConfig, Executor, NoopTracer, Redactor } from "@tunnel-sh/core";
import type { Tracer, Transport } from "@tunnel-sh/core";
import { ConnectionPool, DefaultPoolConfig } from "@tunnel-sh/pool";
import { ConsoleTracer } from "@tunnel-sh/tracer-console";
import { OpenSshTransport } from "@tunnel-sh/transport-openssh";
import { Ssh2Transport } from "@tunnel-sh/transport-ssh2";
import type { OutputStream } from "./output.js";

export type TransportName = "ssh2" | "openssh";

export interface StackOptions {
  readonly transport: TransportName;
  /** Private key file. */
  readonly identity?: string | undefined;
  readonly knownHosts?: string | undefined;
  /** Accept any host key: an explicit opt-out for throwaway hosts. */
  readonly insecureAcceptAnyHostKey?: boolean | undefined;
  /** ssh_config file; default `~/.ssh/config`. */
  readonly sshConfig?: string | undefined;
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

export function makeTransport(options: StackOptions): Transport {
  const insecure = options.insecureAcceptAnyHostKey === true;
  if (options.transport === "openssh") {
    return new OpenSshTransport({
      ...(options.identity !== undefined ? { identityFile: options.identity } : {}),
      ...(options.knownHosts !== undefined ? { knownHostsFile: options.knownHosts } : {}),
      ...(options.sshConfig !== undefined ? { configFile: options.sshConfig } : {}),
      hostKeyChecking: insecure ? "insecure-accept-any" : "strict",
    });
  }
  return new Ssh2Transport({
    ...(options.identity !== undefined ? { privateKey: options.identity } : {}),
    ...(options.knownHosts !== undefined ? { knownHosts: options.knownHosts } : {}),
    ...(options.sshConfig !== undefined ? { sshConfig: options.sshConfig } : {}),
    hostKeyPolicy: insecure ? "insecure-accept-any" : "strict",
  });
}

export function makeTracer(options: StackOptions, redactor: Redactor): Tracer {
  if (options.verbosity <= 0) return new NoopTracer();
  return new ConsoleTracer({
    stream: options.traceStream,
    format: options.traceFormat ?? "pretty",
    level: options.verbosity >= 2 ? "debug" : "info",
    colors: options.traceStream.isTTY === true && options.env.NO_COLOR === undefined,
    redactor,
  });
}

export function makeStack(options: StackOptions, redactor = new Redactor()): Stack {
  const transport = makeTransport(options);
  const tracer = makeTracer(options, redactor);
  const pool = new ConnectionPool(transport, { ...DefaultPoolConfig() }, tracer);
  let config = DefaultExecutorConfig().with({ maxConcurrent: options.concurrency });
  if (options.retries !== undefined) config = config.with({ maxRetries: options.retries });
  if (options.timeout !== undefined) {
    config = config.with({ defaultTimeout: options.timeout, scriptTimeout: options.timeout, transferTimeout: options.timeout });
  }
  const executor = new Executor(pool, config, tracer, { redactor });
  return { executor, pool, redactor, close: () => pool.close() };
}
