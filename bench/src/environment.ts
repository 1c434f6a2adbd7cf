/**
 * The bench's world: a throwaway sshd, the login user, 200 host aliases that all reach it, a known_hosts file
 * covering every alias, working folders, and the ssh arguments every OpenSSH baseline shares.
 */
import { spawn } from "node:child_process";
import { existsSync, readFileSync, statSync } from "node:fs";
import { chown, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startSshd, type Sshd } from "@tunnel-sh/testing";

/** What a child process needs to reach the same server (passed as JSON in an environment variable). */
export interface ServerInfo {
  readonly host: string;
  readonly port: number;
  readonly user: string;
  readonly clientKeyPath: string;
  readonly knownHostsPath: string;
  readonly hostPublicKey: string;
  readonly sshConfigPath: string;
  readonly localDir: string;
  readonly remoteDir: string;
  readonly maxSessions: number;
}

export interface Environment extends ServerInfo {
  readonly sshd: Sshd;
  readonly aliases: readonly string[];
  /** The login user's shell and whether its start-up files are empty, as recorded in the results. */
  readonly shell: { readonly loginShell: string; readonly profileFiles: Record<string, number> };
  close(): Promise<void>;
}

export const MAX_SESSIONS = 10;
export const ALIAS_COUNT = 200;

export async function startEnvironment(): Promise<Environment> {
  // MaxStartups: all 200 aliases reach one sshd, so a fan-out at concurrency 32 would hit the default 10:30:100
  // (30% of connects dropped past 10 unauthenticated), which 200 real hosts would never do. MaxSessions stays at
  // sshd's default of 10: the throughput case runs against it on purpose.
  const sshd = await startSshd({ maxSessions: MAX_SESSIONS, extraConfig: ["MaxStartups 256:30:512", "LogLevel ERROR"] });
  const user = sshd.users.plain.name;
  const localDir = await mkdtemp(join(tmpdir(), "tunnel-bench-local-"));
  const remoteDir = await mkdtemp(join(tmpdir(), "tunnel-bench-remote-"));
  const { uid, gid } = accountIds(user);
  await chown(remoteDir, uid, gid);

  const aliases = Array.from({ length: ALIAS_COUNT }, (_, index) => `bench-${String(index + 1).padStart(3, "0")}`);
  const knownHostsPath = join(localDir, "known_hosts");
  const keyTypeAndKey = sshd.hostPublicKey;
  await writeFile(
    knownHostsPath,
    [`[${sshd.host}]:${sshd.port} ${keyTypeAndKey}`, ...aliases.map((alias) => `[${alias}]:${sshd.port} ${keyTypeAndKey}`)].join("\n") + "\n",
  );
  const sshConfigPath = join(localDir, "ssh_config");
  await writeFile(sshConfigPath, `Host bench-*\n  HostName ${sshd.host}\n  Port ${sshd.port}\n  User ${user}\n`);

  const home = homeOf(user);
  const profileFiles: Record<string, number> = {};
  for (const name of [".bashrc", ".bash_profile", ".bash_login", ".profile"]) {
    const path = join(home, name);
    if (existsSync(path)) profileFiles[name] = statSync(path).size;
  }
  const loginShell = shellOf(user);

  return {
    sshd,
    host: sshd.host,
    port: sshd.port,
    user,
    clientKeyPath: sshd.clientKeyPath,
    knownHostsPath,
    hostPublicKey: sshd.hostPublicKey,
    sshConfigPath,
    localDir,
    remoteDir,
    maxSessions: MAX_SESSIONS,
    aliases,
    shell: { loginShell, profileFiles },
    close: async () => {
      await sshd.stop();
      await rm(localDir, { recursive: true, force: true });
      await rm(remoteDir, { recursive: true, force: true });
    },
  };
}

export function serverInfo(environment: Environment): ServerInfo {
  const { host, port, user, clientKeyPath, knownHostsPath, hostPublicKey, sshConfigPath, localDir, remoteDir, maxSessions } = environment;
  return { host, port, user, clientKeyPath, knownHostsPath, hostPublicKey, sshConfigPath, localDir, remoteDir, maxSessions };
}

function passwd(user: string): string[] {
  const line = readFileSync("/etc/passwd", "utf8")
    .split("\n")
    .find((entry) => entry.startsWith(`${user}:`));
  if (!line) throw new Error(`no account ${user}`);
  return line.split(":");
}

function homeOf(user: string): string {
  return passwd(user)[5] ?? `/home/${user}`;
}

function shellOf(user: string): string {
  return passwd(user)[6] ?? "";
}

function accountIds(user: string): { uid: number; gid: number } {
  const fields = passwd(user);
  return { uid: Number(fields[2]), gid: Number(fields[3]) };
}

/** Options every OpenSSH baseline uses: the test key only, the bench's known_hosts, no prompts, no user config. */
export function sshOptions(server: ServerInfo, configFile = "/dev/null"): string[] {
  return [
    "-F",
    configFile,
    "-i",
    server.clientKeyPath,
    "-o",
    "IdentitiesOnly=yes",
    "-o",
    `UserKnownHostsFile=${server.knownHostsPath}`,
    "-o",
    "StrictHostKeyChecking=yes",
    "-o",
    "BatchMode=yes",
    "-o",
    "LogLevel=ERROR",
  ];
}

export interface ProcessOutcome {
  readonly code: number | null;
  readonly stderr: string;
}

/** Run a local program to completion (stdout discarded). */
export function run(program: string, args: readonly string[]): Promise<ProcessOutcome> {
  return new Promise((resolve, reject) => {
    const child = spawn(program, args, { stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    child.stderr.on("data", (chunk: Buffer) => {
      if (stderr.length < 4096) stderr += chunk.toString();
    });
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stderr }));
  });
}

/** Run a local program and throw when it fails. */
export async function runChecked(program: string, args: readonly string[]): Promise<void> {
  const outcome = await run(program, args);
  if (outcome.code !== 0) throw new Error(`${program} exited ${outcome.code}: ${outcome.stderr.trim()}`);
}
