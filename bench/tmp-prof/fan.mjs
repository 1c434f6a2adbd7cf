// src/environment.ts
import { existsSync, readFileSync, statSync } from "node:fs";
import { chown, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startSshd } from "@tunnel-sh/testing";
var MAX_SESSIONS = 10;
var ALIAS_COUNT = 200;
async function startEnvironment() {
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
    [`[${sshd.host}]:${sshd.port} ${keyTypeAndKey}`, ...aliases.map((alias) => `[${alias}]:${sshd.port} ${keyTypeAndKey}`)].join("\n") + "\n"
  );
  const sshConfigPath = join(localDir, "ssh_config");
  await writeFile(sshConfigPath, `Host bench-*
  HostName ${sshd.host}
  Port ${sshd.port}
  User ${user}
`);
  const home = homeOf(user);
  const profileFiles = {};
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
    }
  };
}
function serverInfo(environment) {
  const { host, port, user, clientKeyPath, knownHostsPath, hostPublicKey, sshConfigPath, localDir, remoteDir, maxSessions } = environment;
  return { host, port, user, clientKeyPath, knownHostsPath, hostPublicKey, sshConfigPath, localDir, remoteDir, maxSessions };
}
function passwd(user) {
  const line = readFileSync("/etc/passwd", "utf8").split("\n").find((entry) => entry.startsWith(`${user}:`));
  if (!line) throw new Error(`no account ${user}`);
  return line.split(":");
}
function homeOf(user) {
  return passwd(user)[5] ?? `/home/${user}`;
}
function shellOf(user) {
  return passwd(user)[6] ?? "";
}
function accountIds(user) {
  const fields = passwd(user);
  return { uid: Number(fields[2]), gid: Number(fields[3]) };
}

// src/clients.ts
import { DefaultExecutorConfig, Executor } from "@tunnel-sh/core";
import { ConnectionPool, DefaultPoolConfig } from "@tunnel-sh/pool";
import { OpenSshTransport } from "@tunnel-sh/transport-openssh";
import { Ssh2Transport } from "@tunnel-sh/transport-ssh2";
import { NodeSSH } from "node-ssh";
import ssh2 from "ssh2";
function makeTransport(name, server2, sshConfig = false) {
  const options = {
    identityFile: server2.clientKeyPath,
    knownHostsFile: server2.knownHostsPath,
    configFile: sshConfig ? server2.sshConfigPath : false,
    agent: false,
    maxChannels: server2.maxSessions
  };
  return name === "ssh2" ? new Ssh2Transport(options) : new OpenSshTransport(options);
}
function makeStack(name, server2, options = {}) {
  const pool = new ConnectionPool(makeTransport(name, server2, options.sshConfig), { ...DefaultPoolConfig(), ...options.pool });
  const executor = new Executor(pool, DefaultExecutorConfig().with({ maxConcurrent: options.maxConcurrent ?? 64, transferTimeout: 6e5 }));
  return { pool, executor, close: () => pool.close() };
}

// tmp-prof/fan.mts
var env = await startEnvironment();
var server = serverInfo(env);
var hosts = Array.from({ length: 200 }, (_, i) => `bench-${String(i + 1).padStart(3, "0")}`);
for (let round = 0; round < 3; round++) {
  const stack = makeStack("openssh", server, { sshConfig: true, maxConcurrent: 32 });
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const results = await Promise.allSettled(hosts.map((host) => stack.executor.runCommand({ host, cmd: "true" })));
  const t1 = performance.now();
  const cpu = process.cpuUsage(cpu0);
  await stack.close();
  console.log(`round ${round}: ${(200 / ((t1 - t0) / 1e3)).toFixed(2)} hosts/s, node cpu ${((cpu.user + cpu.system) / 1e3).toFixed(0)} ms, failures ${results.filter((r) => r.status === "rejected").length}`);
}
await env.close();
process.exit(0);
