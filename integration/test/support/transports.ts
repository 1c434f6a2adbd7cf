/**
 * Builds tunnel's stack (transport → pool → executor) for each transport against one test sshd, so every
 * cross-package suite runs the same cases over ssh2 and OpenSSH.
 */
import { DefaultExecutorConfig, Executor } from "@tunnel-sh/core";
import type { ExecutorConfig, ExecutorOptions, Tracer, Transport } from "@tunnel-sh/core";
import { ConnectionPool, DefaultPoolConfig } from "@tunnel-sh/pool";
import type { PoolConfig } from "@tunnel-sh/pool";
import type { Sshd } from "@tunnel-sh/testing";
import { OpenSshTransport } from "@tunnel-sh/transport-openssh";
import { Ssh2Transport } from "@tunnel-sh/transport-ssh2";

export type TransportName = "ssh2" | "openssh";
export const TRANSPORTS: readonly TransportName[] = ["ssh2", "openssh"];

export interface TransportOverrides {
  readonly password?: string;
  /** Use password authentication only (no key). */
  readonly passwordOnly?: boolean;
  readonly keepaliveInterval?: number;
  readonly keepaliveCountMax?: number;
  readonly readyTimeout?: number;
  readonly maxChannels?: number;
}

export function makeTransport(name: TransportName, sshd: Pick<Sshd, "clientKeyPath" | "knownHostsPath">, overrides: TransportOverrides = {}): Transport {
  const { passwordOnly, ...rest } = overrides;
  if (name === "ssh2") {
    return new Ssh2Transport({
      ...(passwordOnly ? {} : { identityFile: sshd.clientKeyPath }),
      knownHostsFile: sshd.knownHostsPath,
      configFile: false,
      agent: false,
      ...rest,
    });
  }
  return new OpenSshTransport({
    ...(passwordOnly ? { options: { PubkeyAuthentication: "no" } } : { identityFile: sshd.clientKeyPath }),
    knownHostsFile: sshd.knownHostsPath,
    configFile: "/dev/null",
    ...rest,
  });
}

export interface Stack {
  readonly transport: Transport;
  readonly pool: ConnectionPool;
  readonly executor: Executor;
  close(): Promise<void>;
}

export interface StackOptions {
  readonly transport?: TransportOverrides;
  readonly pool?: Partial<PoolConfig>;
  readonly executor?: ExecutorConfig;
  readonly tracer?: Tracer;
  readonly executorOptions?: ExecutorOptions;
}

/** Quick retries so the retry cases stay fast. */
export const testExecutorConfig = (): ExecutorConfig =>
  DefaultExecutorConfig().with({ retryBackoff: 200, maxRetryDelay: 1_000, retryJitter: 0, maxRetries: 2, defaultTimeout: 30_000 });

export function makeStack(name: TransportName, sshd: Pick<Sshd, "clientKeyPath" | "knownHostsPath">, options: StackOptions = {}): Stack {
  const transport = makeTransport(name, sshd, options.transport);
  const pool = new ConnectionPool(transport, { ...DefaultPoolConfig(), ...options.pool }, options.tracer);
  const executor = new Executor(pool, options.executor ?? testExecutorConfig(), options.tracer, options.executorOptions);
  return { transport, pool, executor, close: () => pool.close() };
}
