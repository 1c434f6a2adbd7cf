/**
 * A throwaway real OpenSSH sshd on a free loopback port, for tests that must talk to the real thing.
 *
 * Each instance has its own folder (config, ed25519 host key, log) and runs `sshd -D` as a child of the test
 * process. The test accounts (see `test-users.ts`) are shared by every instance on the machine.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { accessSync, closeSync, constants, existsSync, openSync, readFileSync, rmSync } from "node:fs";
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { ConfigError, describeOptionValue, rejectUnknownOptions } from "@tunnel-sh/core";
import { descendants, isAlive, killTrees, listProcesses, listProcessesSync, startTimeOf, uidOf, type ProcessEntry } from "./process-table.js";
import type { CertificateAuthority } from "./certificate-authority.js";
import { runLocal } from "./run-local.js";
import { ensureTestAccounts } from "./test-users.js";
import { childEnvironment } from "./child-environment.js";
import { serverSupport, type ServerSupport } from "./server-support.js";

const SSHD_PATH = "/usr/sbin/sshd";
const READY_DEADLINE_MS = 10_000;

export interface SshdUser {
  readonly name: string;
  readonly password: string;
}

export interface StartSshdOptions {
  /** sshd's MaxSessions: channels per connection. Default 10. */
  readonly maxSessions?: number;
  /** sshd's UsePAM. Default true (keyboard-interactive needs it); false makes wrong passwords fail fast. */
  readonly usePam?: boolean;
  /**
   * Extra sshd_config lines, placed first. sshd keeps the first value of most keywords but the last of a few
   * (MaxStartups), so a default line with the same keyword is removed: `["MaxStartups 2"]` really means 2.
   * Lines from the first `Match` on are conditional blocks and go at the end instead.
   */
  readonly extraConfig?: readonly string[];
  /** Serve the `sftp` subsystem. Default true; false leaves out the `Subsystem` line (the request then fails). */
  readonly sftp?: boolean;
  /**
   * A locked-down server as hardened hosts run it: `MaxSessions 1` (no second channel beside a running command),
   * `PermitTTY no` and no SFTP subsystem. Overrides `maxSessions` and `sftp`.
   */
  readonly lockedDown?: boolean;
  /**
   * Sign the host key with this CA and present the certificate (sshd's `HostCertificate`). `principals` default to
   * `["127.0.0.1"]`, `validity` to `"-5m:+1h"` (ssh-keygen `-V` syntax). `keyType: "rsa"` adds an RSA host key
   * and certifies that one instead of the ed25519 key (which the server keeps presenting to clients that ask for it).
   */
  readonly hostCertificate?: {
    readonly authority: CertificateAuthority;
    readonly principals?: readonly string[];
    readonly validity?: string;
    readonly keyType?: "ed25519" | "rsa";
  };
}

export interface Sshd {
  /** Always `127.0.0.1`. */
  readonly host: string;
  readonly port: number;
  /** Private folder holding the config, host key, known_hosts file and log; removed by `stop()`. */
  readonly dir: string;
  /** `ssh-ed25519 AAAA...` */
  readonly hostPublicKey: string;
  /** `[127.0.0.1]:PORT ssh-ed25519 AAAA...` */
  readonly knownHostsLine: string;
  /** A file holding `knownHostsLine`. */
  readonly knownHostsPath: string;
  /**
   * With the `hostCertificate` option: the certificate (`ssh-ed25519-cert-v01@openssh.com AAAA...`) and the public
   * key it certifies (`ssh-ed25519 AAAA...` or `ssh-rsa AAAA...`), for `@revoked` lines.
   */
  readonly hostCertificate: { readonly certificate: string; readonly publicKey: string } | undefined;
  /** An ed25519 private key without passphrase, authorized for every test user. Readable by root only. */
  readonly clientKeyPath: string;
  readonly users: {
    /** `tunnel_plain`: /bin/bash, no sudo. */
    readonly plain: SshdUser;
    /** `tunnel_sudo`: sudo without a password. */
    readonly sudo: SshdUser;
    /** `tunnel_pwsudo`: sudo with its password. */
    readonly pwsudo: SshdUser;
    /** `tunnel_other`: an account to `sudo -u` to. */
    readonly other: SshdUser;
  };
  /** The listener's pid (a new one after `restart()`; 0 after `crash()` until `restart()`). */
  readonly pid: number;
  readonly logPath: string;
  /** Stop the listener and start it again: same port, same host key. Open sessions keep running. */
  restart(): Promise<void>;
  /** Kill the listener and every process under it: all sessions drop. `restart()` brings the server back. */
  crash(): Promise<void>;
  /** Kill everything this instance started and remove its folder. Idempotent. */
  stop(): Promise<void>;
}

export type SshdSupport = ServerSupport;

/**
 * Whether this machine can run a throwaway sshd: it needs root (to create the test accounts) and /usr/sbin/sshd.
 * When it cannot and `process.env.CI` is set, this throws: CI must run the suites that need sshd, never skip them.
 */
export function sshdSupport(): SshdSupport {
  let reason: string | undefined;
  if (process.platform !== "linux") reason = "a throwaway sshd needs Linux";
  else if (process.getuid?.() !== 0) reason = "a throwaway sshd needs root (it creates the test accounts)";
  else if (!executable(SSHD_PATH)) reason = `${SSHD_PATH} is missing (install openssh-server)`;
  else {
    const missing = REQUIRED_TOOLS.filter(([tool]) => !onPath(tool)).map(([tool, from]) => `${tool} (${from})`);
    if (missing.length > 0) reason = `missing ${missing.join(", ")}`;
  }
  return serverSupport("sshd", reason);
}

/** Programs the launcher runs, and the Debian package that brings each. */
const REQUIRED_TOOLS: ReadonlyArray<readonly [string, string]> = [
  ["ssh-keygen", "openssh-client"],
  ["ssh-keyscan", "openssh-client"],
  ["flock", "util-linux"],
  ["useradd", "passwd"],
  ["chpasswd", "passwd"],
  ["visudo", "sudo"],
];

function onPath(tool: string): boolean {
  const dirs = (process.env.PATH ?? "").split(":").concat(["/usr/sbin", "/sbin", "/usr/bin", "/bin"]);
  return dirs.some((dir) => dir !== "" && executable(join(dir, tool)));
}

function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * Processes of `user` on this machine (the test server is local), zombies left out.
 * @example expect(await remoteProcesses("tunnel_plain")).not.toContainEqual(expect.objectContaining({ pid }));
 */
export async function remoteProcesses(user: string): Promise<Array<{ pid: number; ppid: number; args: string }>> {
  const uid = uidOf(user);
  if (uid === undefined) throw new Error(`no local account named ${user}`);
  return (await listProcesses())
    .filter((entry) => entry.uid === uid && entry.state !== "Z" && entry.state !== "X")
    .map(({ pid, ppid, args }) => ({ pid, ppid, args }));
}

const SSHD_OPTIONS = Object.keys({ maxSessions: true, usePam: true, extraConfig: true, hostCertificate: true, sftp: true, lockedDown: true } satisfies Record<
  keyof StartSshdOptions,
  true
>);

/** Throws `ConfigError` for an unknown option or a wrong value, before anything is created. */
function validateSshdOptions(options: StartSshdOptions): void {
  rejectUnknownOptions(options, SSHD_OPTIONS, "startSshd");
  const values = options as Record<string, unknown>;
  if (options.maxSessions !== undefined && !(Number.isInteger(options.maxSessions) && options.maxSessions >= 1)) {
    throw new ConfigError("maxSessions", `must be a positive integer, got ${describeOptionValue(values.maxSessions)}`);
  }
  if (options.usePam !== undefined && typeof options.usePam !== "boolean") {
    throw new ConfigError("usePam", `must be true or false, got ${describeOptionValue(values.usePam)}`);
  }
  for (const flag of ["sftp", "lockedDown"] as const) {
    if (options[flag] !== undefined && typeof options[flag] !== "boolean") {
      throw new ConfigError(flag, `must be true or false, got ${describeOptionValue(values[flag])}`);
    }
  }
  const certificate = values.hostCertificate as { authority?: { signHostKey?: unknown } } | undefined;
  if (certificate !== undefined && (typeof certificate !== "object" || certificate === null || typeof certificate.authority?.signHostKey !== "function")) {
    throw new ConfigError("hostCertificate", "must be { authority } with a CA from createCertificateAuthority()");
  }
  const certifiedType = (values.hostCertificate as { keyType?: unknown } | undefined)?.keyType;
  if (certifiedType !== undefined && certifiedType !== "ed25519" && certifiedType !== "rsa") {
    throw new ConfigError("hostCertificate.keyType", `must be "ed25519" or "rsa", got ${describeOptionValue(certifiedType)}`);
  }
  const extra: unknown = options.extraConfig;
  if (extra !== undefined && (!Array.isArray(extra) || extra.some((line) => typeof line !== "string" || /[\r\n]/.test(line)))) {
    throw new ConfigError("extraConfig", "must be a list of sshd_config lines (strings without line breaks)");
  }
}

/** Start a throwaway sshd. Rejects (with the log's tail) when it does not answer with its host key in time. */
export async function startSshd(options: StartSshdOptions = {}): Promise<Sshd> {
  validateSshdOptions(options);
  const support = sshdSupport();
  if (!support.available) throw new Error(`cannot start sshd: ${support.reason}`);
  const accounts = await ensureTestAccounts();
  await (staleSweep ??= sweepStaleInstances().catch(() => {}));
  const dir = await mkdtemp(join(tmpdir(), INSTANCE_PREFIX));
  try {
    // Who owns the instance: a later launch in another process cleans it up once this process is gone.
    await writeFile(join(dir, "owner"), `${process.pid} ${startTimeOf(process.pid) ?? ""}\n`);
    const keyPath = join(dir, "ssh_host_ed25519_key");
    const keygen = await runLocal("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "tunnel-testing-host", "-f", keyPath]);
    if (keygen.code !== 0) throw new Error(`ssh-keygen failed: ${keygen.stderr.trim()}`);
    const hostPublicKey = (await readFile(`${keyPath}.pub`, "utf8")).trim().split(" ").slice(0, 2).join(" ");
    const extraLines = [...(await compatibilityLines())];
    let hostCertificate: Sshd["hostCertificate"];
    if (options.hostCertificate) {
      const { authority, principals = ["127.0.0.1"], validity = "-5m:+1h", keyType = "ed25519" } = options.hostCertificate;
      let certifiedPath = keyPath;
      if (keyType === "rsa") {
        certifiedPath = join(dir, "ssh_host_rsa_key");
        const rsa = await runLocal("ssh-keygen", ["-q", "-t", "rsa", "-b", "2048", "-N", "", "-C", "tunnel-testing-host", "-f", certifiedPath]);
        if (rsa.code !== 0) throw new Error(`ssh-keygen failed: ${rsa.stderr.trim()}`);
      }
      const certificatePath = await authority.signHostKey(`${certifiedPath}.pub`, { identity: "tunnel-testing-host", principals, validity });
      extraLines.push(`HostCertificate ${certificatePath}`);
      const firstTwo = (text: string) => text.trim().split(" ").slice(0, 2).join(" ");
      hostCertificate = { certificate: firstTwo(await readFile(certificatePath, "utf8")), publicKey: firstTwo(await readFile(`${certifiedPath}.pub`, "utf8")) };
    }
    // A port picked now may be taken before sshd binds it; then try another one.
    let lastError: unknown;
    for (let attempt = 0; attempt < 5; attempt++) {
      const port = await freePort();
      const instance = new SshdInstance(dir, port, hostPublicKey, accounts.clientKeyPath, accounts.users, hostCertificate);
      await writeFile(join(dir, "sshd_config"), renderConfig(dir, port, options, extraLines), { mode: 0o600 });
      await writeFile(instance.knownHostsPath, `${instance.knownHostsLine}\n`);
      try {
        await instance.launch();
        return instance;
      } catch (error) {
        lastError = error;
        if (!(error instanceof PortTakenError)) throw error;
      }
    }
    throw lastError;
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
}

class PortTakenError extends Error {}

const INSTANCE_PREFIX = "tunnel-sshd-";
let staleSweep: Promise<void> | undefined;

/**
 * Clean up after test processes that died without `stop()` (killed by a signal, say): for each instance whose owner
 * process is gone, kill its listener and sessions and remove its folder.
 */
async function sweepStaleInstances(): Promise<void> {
  const table = await listProcesses();
  const entries = await readdir(tmpdir(), { withFileTypes: true });
  for (const entry of entries) {
    if (!entry.isDirectory() || !entry.name.startsWith(INSTANCE_PREFIX)) continue;
    const dir = join(tmpdir(), entry.name);
    const owner = await readFile(join(dir, "owner"), "utf8").catch(() => undefined);
    const config = join(dir, "sshd_config");
    const listeners = table.filter((candidate) => ` ${candidate.args} `.includes(` -f ${config} `));
    if (owner === undefined) {
      // Being created right now: leave it. Without an owner, only an old folder that nothing runs from is removed.
      const modified = (await stat(dir).catch(() => undefined))?.mtimeMs ?? Date.now();
      if (listeners.length > 0 || Date.now() - modified < 120_000) continue;
    } else {
      const [pid = 0, startTime = 0] = owner.trim().split(" ").map(Number);
      if (isAlive(pid, startTime > 0 ? startTime : undefined)) continue;
    }
    killTrees(
      table,
      listeners.map((listener) => listener.pid),
    );
    await rm(dir, { recursive: true, force: true });
  }
}

let compatibility: Promise<string[]> | undefined;

/** Lines that keep newer servers behaving like the ones the tests were written for. */
function compatibilityLines(): Promise<string[]> {
  compatibility ??= runLocal(SSHD_PATH, ["-V"]).then((result) => {
    const match = /OpenSSH_(\d+)\.(\d+)/.exec(result.stderr + result.stdout);
    const version = match ? Number(match[1]) * 100 + Number(match[2]) : 0;
    // 9.8 added penalties for sources that fail often, which a fault suite does on purpose.
    return version >= 908 ? ["PerSourcePenalties no"] : [];
  });
  return compatibility;
}

/** A loopback port nothing listens on right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

function renderConfig(dir: string, port: number, options: StartSshdOptions, compatibility: readonly string[]): string {
  // Lines from the first `Match` on form conditional blocks, which run to the end of the file: they go last.
  const lines = [...(options.lockedDown ? ["PermitTTY no"] : []), ...(options.extraConfig ?? [])];
  const firstMatch = lines.findIndex((line) => keyword(line) === "match");
  const extra = [...(firstMatch === -1 ? lines : lines.slice(0, firstMatch)), ...compatibility];
  const blocks = firstMatch === -1 ? [] : lines.slice(firstMatch);
  const overridden = new Set(extra.map((line) => keyword(line)).filter((word) => word !== ""));
  const defaults = [
    `Port ${port}`,
    "ListenAddress 127.0.0.1",
    `HostKey ${join(dir, "ssh_host_ed25519_key")}`,
    ...(options.hostCertificate?.keyType === "rsa" ? [`HostKey ${join(dir, "ssh_host_rsa_key")}`] : []),
    `PidFile ${join(dir, "sshd.pid")}`,
    `UsePAM ${options.usePam === false ? "no" : "yes"}`,
    "PubkeyAuthentication yes",
    "PasswordAuthentication yes",
    "KbdInteractiveAuthentication yes",
    "PermitRootLogin no",
    "AuthorizedKeysFile .ssh/authorized_keys",
    "StrictModes yes",
    `MaxSessions ${options.lockedDown ? 1 : (options.maxSessions ?? 10)}`,
    "MaxStartups 10:30:100",
    "LoginGraceTime 30",
    "ClientAliveInterval 5",
    "ClientAliveCountMax 3",
    "LogLevel VERBOSE",
    ...(options.sftp === false || options.lockedDown ? [] : ["Subsystem sftp internal-sftp"]),
    "AcceptEnv LANG LC_*",
    "PrintMotd no",
  ].filter((line) => !overridden.has(keyword(line)));
  return `${[...extra, ...defaults, ...blocks].join("\n")}\n`;
}

function keyword(line: string): string {
  return line.trim().split(/\s+/)[0]?.toLowerCase() ?? "";
}

/** Every live instance, so that a test process that exits without `stop()` leaves no sshd behind. */
const live = new Set<SshdInstance>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once("exit", () => {
    for (const instance of live) instance.killNowSync();
  });
}

interface Tracked {
  readonly pid: number;
  readonly startTime: number;
}

class SshdInstance implements Sshd {
  readonly host = "127.0.0.1";
  readonly knownHostsPath: string;
  readonly knownHostsLine: string;
  readonly logPath: string;
  #listener: Tracked | undefined;
  /** Sessions that outlived a restarted listener: still this instance's, still to be killed by `stop()`. */
  readonly #orphans: Tracked[] = [];
  #stopping: Promise<void> | undefined;

  constructor(
    readonly dir: string,
    readonly port: number,
    readonly hostPublicKey: string,
    readonly clientKeyPath: string,
    readonly users: Sshd["users"],
    readonly hostCertificate: Sshd["hostCertificate"] = undefined,
  ) {
    this.knownHostsLine = `[127.0.0.1]:${port} ${hostPublicKey}`;
    this.knownHostsPath = join(dir, "known_hosts");
    this.logPath = join(dir, "sshd.log");
  }

  get pid(): number {
    return this.#listener?.pid ?? 0;
  }

  async launch(): Promise<void> {
    const config = join(this.dir, "sshd_config");
    const check = await runLocal(SSHD_PATH, ["-t", "-f", config]);
    if (check.code !== 0) throw new Error(`sshd rejected its config: ${check.stderr.trim()}`);
    const logOffset = existsSync(this.logPath) ? readFileSync(this.logPath).length : 0;
    const stderrPath = join(this.dir, "sshd.stderr");
    const stderrFd = openSync(stderrPath, "a");
    let child: ChildProcess;
    try {
      child = spawn(SSHD_PATH, ["-D", "-f", config, "-E", this.logPath], { stdio: ["ignore", "ignore", stderrFd], env: childEnvironment() });
    } finally {
      closeSync(stderrFd);
    }
    // The test process must be able to exit while the server runs; `stop()` and the exit hook clean up.
    child.unref();
    child.on("error", () => {
      // reported below: the ready poll sees the process gone
    });
    const pid = child.pid;
    if (pid === undefined) throw new Error(`could not start ${SSHD_PATH}`);
    const entry = (await listProcesses()).find((candidate) => candidate.pid === pid);
    this.#listener = { pid, startTime: entry?.startTime ?? -1 };
    live.add(this);
    installExitHook();
    try {
      await this.#waitReady(child, logOffset);
    } catch (error) {
      await this.#killTree();
      live.delete(this);
      throw error;
    }
  }

  async #waitReady(child: ChildProcess, logOffset: number): Promise<void> {
    const deadline = Date.now() + READY_DEADLINE_MS;
    for (;;) {
      if (child.exitCode !== null || child.signalCode !== null || !isAlive(child.pid ?? 0)) {
        const log = this.#logTail(logOffset);
        if (/Address already in use|Cannot bind any address/.test(log)) throw new PortTakenError(log);
        throw new Error(`sshd exited before it was ready:\n${log}`);
      }
      const scan = await runLocal("ssh-keyscan", ["-T", "1", "-t", "ed25519", "-p", String(this.port), this.host], {
        timeoutMs: 5_000,
      }).catch(() => undefined);
      if (scan?.stdout.includes(this.hostPublicKey)) return;
      if (Date.now() > deadline) {
        throw new Error(`sshd did not answer with its host key within ${READY_DEADLINE_MS} ms:\n${this.#logTail(logOffset)}`);
      }
      await sleep(30);
    }
  }

  #logTail(offset: number): string {
    const read = (path: string, from: number) => {
      try {
        return readFileSync(path).subarray(from).toString("utf8");
      } catch {
        return "";
      }
    };
    const text = `${read(this.logPath, offset)}${read(join(this.dir, "sshd.stderr"), 0)}`;
    return text.trim().split("\n").slice(-20).join("\n");
  }

  async restart(): Promise<void> {
    if (this.#stopping) throw new Error("this sshd was stopped");
    const listener = this.#listener;
    if (listener && isAlive(listener.pid, listener.startTime)) {
      // The sessions survive the listener (as with a real `systemctl restart`); remember them for `stop()`.
      const tree = descendants(await listProcesses(), [listener.pid]);
      for (const entry of tree.slice(1)) if (entry.ppid === listener.pid) this.#orphans.push(entry);
      process.kill(listener.pid, "SIGTERM");
      await waitGone([listener], 10_000);
    }
    await this.launch();
  }

  async crash(): Promise<void> {
    if (this.#stopping) throw new Error("this sshd was stopped");
    await this.#killTree();
  }

  stop(): Promise<void> {
    this.#stopping ??= (async () => {
      await this.#killTree();
      live.delete(this);
      await rm(this.dir, { recursive: true, force: true });
    })();
    return this.#stopping;
  }

  /** The listener, the sessions (including ones that outlived a restart) and everything they started. */
  #tree(table: readonly ProcessEntry[]): ProcessEntry[] {
    const roots = [this.#listener, ...this.#orphans]
      .filter((tracked): tracked is Tracked => tracked !== undefined)
      .filter((tracked) => table.some((entry) => entry.pid === tracked.pid && entry.startTime === tracked.startTime))
      .map((tracked) => tracked.pid);
    return descendants(table, roots);
  }

  async #killTree(): Promise<void> {
    // Snapshot first, then kill: a killed parent's children are re-parented and would drop out of the tree.
    const tree = this.#tree(await listProcesses());
    for (const entry of tree) {
      try {
        process.kill(entry.pid, "SIGKILL");
      } catch {
        // already gone
      }
    }
    this.#orphans.length = 0;
    this.#listener = undefined;
    await waitGone(tree, 10_000);
  }

  /** Synchronous clean-up for the process's exit hook. */
  killNowSync(): void {
    for (const entry of this.#tree(listProcessesSync())) {
      try {
        process.kill(entry.pid, "SIGKILL");
      } catch {
        // already gone
      }
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}

export async function waitGone(processes: readonly Tracked[], timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (processes.some((entry) => isAlive(entry.pid, entry.startTime))) {
    if (Date.now() > deadline) {
      const left = processes.filter((entry) => isAlive(entry.pid, entry.startTime)).map((entry) => entry.pid);
      throw new Error(`processes ${left.join(", ")} did not exit within ${timeoutMs} ms`);
    }
    await sleep(20);
  }
}
