/**
 * The contestants: tunnel's stack per transport, and the raw baselines (ssh2, node-ssh, an OpenSSH ControlMaster).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import { connect as netConnect } from "node:net";
import { join } from "node:path";
import { DefaultExecutorConfig, Executor } from "@tunnel-sh/core";
import type { SshTransportOptions, Transport } from "@tunnel-sh/core";
import { ConnectionPool, DefaultPoolConfig, type PoolConfig } from "@tunnel-sh/pool";
import { OpenSshTransport } from "@tunnel-sh/transport-openssh";
import { Ssh2Transport } from "@tunnel-sh/transport-ssh2";
import { NodeSSH } from "node-ssh";
import ssh2 from "ssh2";
import type { Client, ClientChannel, ConnectConfig } from "ssh2";
import { run, sshOptions, type ServerInfo } from "./environment.js";

export type TransportName = "ssh2" | "openssh";
export const TRANSPORTS: readonly TransportName[] = ["ssh2", "openssh"];

export function makeTransport(name: TransportName, server: ServerInfo, sshConfig = false): Transport {
  // The same options, by the same names, for both transports.
  const options: SshTransportOptions = {
    identityFile: server.clientKeyPath,
    knownHostsFile: server.knownHostsPath,
    configFile: sshConfig ? server.sshConfigPath : false,
    agent: false,
    maxChannels: server.maxSessions,
  };
  return name === "ssh2" ? new Ssh2Transport(options) : new OpenSshTransport(options);
}

export interface Stack {
  readonly pool: ConnectionPool;
  readonly executor: Executor;
  close(): Promise<void>;
}

/** transport → pool → executor, as a user would wire it; `maxConcurrent` raised so the executor never queues. */
export function makeStack(
  name: TransportName,
  server: ServerInfo,
  options: { pool?: Partial<PoolConfig>; sshConfig?: boolean; maxConcurrent?: number } = {},
): Stack {
  const pool = new ConnectionPool(makeTransport(name, server, options.sshConfig), { ...DefaultPoolConfig(), ...options.pool });
  const executor = new Executor(pool, DefaultExecutorConfig().with({ maxConcurrent: options.maxConcurrent ?? 64, transferTimeout: 600_000 }));
  return { pool, executor, close: () => pool.close() };
}

/** ssh2 connect options with the same host key check as tunnel (the key blob against known_hosts). */
export function rawConfig(server: ServerInfo, host = server.host): ConnectConfig {
  const expected = Buffer.from(server.hostPublicKey.split(" ")[1] ?? "", "base64");
  return {
    host,
    port: server.port,
    username: server.user,
    privateKey: readFileSync(server.clientKeyPath),
    hostVerifier: (key: Buffer) => Buffer.compare(key, expected) === 0,
    readyTimeout: 60_000,
  };
}

/** A raw ssh2 client, with TCP_NODELAY on its socket or (ssh2's default) without. */
export function rawConnect(server: ServerInfo, noDelay = true, host = server.host): Promise<Client> {
  const client = new ssh2.Client();
  const config = rawConfig(server, host);
  if (noDelay) {
    const socket = netConnect({ host, port: server.port });
    socket.setNoDelay(true);
    config.sock = socket;
  }
  return new Promise((resolve, reject) => {
    client.once("ready", () => {
      client.removeListener("error", reject);
      client.on("error", () => {});
      resolve(client);
    });
    client.once("error", reject);
    client.connect(config);
  });
}

/** Run `command` on a raw ssh2 client; resolves with the exit code, rejects when the channel cannot open. */
export function rawExec(client: Client, command: string): Promise<number | null> {
  return new Promise((resolve, reject) => {
    client.exec(command, (error: Error | undefined, stream: ClientChannel) => {
      if (error) return reject(error);
      stream.on("close", (code: number | null) => resolve(code));
      stream.resume();
      stream.stderr.resume();
    });
  });
}

export function rawEnd(client: Client): Promise<void> {
  return new Promise((resolve) => {
    client.once("close", () => resolve());
    client.end();
  });
}

export async function nodeSshConnect(server: ServerInfo): Promise<NodeSSH> {
  const ssh = new NodeSSH();
  const { privateKey: _key, ...config } = rawConfig(server);
  await ssh.connect({ ...config, privateKeyPath: server.clientKeyPath });
  return ssh;
}

/** An OpenSSH ControlMaster of our own (`ssh -M -N -S sock`), for the `ssh -S` baseline. */
export class ControlMaster {
  readonly socketPath: string;
  #child: ChildProcess | undefined;

  constructor(
    private readonly server: ServerInfo,
    dir: string,
  ) {
    this.socketPath = join(dir, "cm.sock");
  }

  async start(): Promise<void> {
    this.#child = spawn(
      "ssh",
      [...sshOptions(this.server), "-M", "-N", "-S", this.socketPath, "-p", String(this.server.port), `${this.server.user}@${this.server.host}`],
      {
        stdio: "ignore",
      },
    );
    const deadline = Date.now() + 20_000;
    while ((await run("ssh", ["-S", this.socketPath, "-O", "check", "x"])).code !== 0) {
      if (Date.now() > deadline) throw new Error("the ControlMaster did not come up");
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  /** `ssh -S sock x true`, exactly what a script would run through the master. */
  exec(command: string): Promise<number | null> {
    return run("ssh", ["-S", this.socketPath, "-o", "ControlMaster=no", "-T", "x", command]).then((outcome) => outcome.code);
  }

  async stop(): Promise<void> {
    await run("ssh", ["-S", this.socketPath, "-O", "exit", "x"]);
    this.#child?.kill("SIGTERM");
  }
}

/** A fresh `ssh user@host true`: connect, authenticate, exec, close. */
export function freshSsh(server: ServerInfo, command: string, host = server.host, configFile?: string): Promise<number | null> {
  return run("ssh", [...sshOptions(server, configFile), "-T", "-p", String(server.port), `${server.user}@${host}`, command]).then((outcome) => outcome.code);
}
