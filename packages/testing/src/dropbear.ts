/**
 * A throwaway real dropbear server (Debian `dropbear-bin`) on a free loopback port: the SSH server of routers and
 * embedded devices, which behaves unlike OpenSSH where it matters to an executor (the session command is not a
 * process-group leader; an SSH `signal` reaches only the session's pid).
 *
 * Each instance has its own folder (ed25519 host key, known_hosts file, log) and runs `dropbear -F -E` as a child of
 * the test process. It accepts the same test accounts as `startSshd` (see `test-users.ts` and `shell-users.ts`).
 * Debian's dropbear serves SFTP through `/usr/lib/sftp-server` when `openssh-sftp-server` is installed.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { closeSync, openSync, readFileSync, rmSync } from "node:fs";
import { rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { descendants, isAlive, killEach, listProcesses, listProcessesSync, startTimeOf, waitGone } from "./process-table.js";
import { runLocal } from "./run-local.js";
import type { Sshd } from "./sshd.js";
import { ensureTestAccounts } from "./test-users.js";
import { executable, serverSupport, type ServerSupport } from "./server-support.js";
import { liveServers, onFreePort, ownedFolder, sweepStaleFolders, waitForHostKey } from "./server-process.js";

const DROPBEAR_PATH = "/usr/sbin/dropbear";
const DROPBEARKEY_PATH = "/usr/bin/dropbearkey";
const READY_DEADLINE_MS = 10_000;
const INSTANCE_PREFIX = "tunnel-dropbear-";

/** A running dropbear: the parts of `Sshd` that make sense for it. */
export type Dropbear = Pick<
  Sshd,
  "host" | "port" | "dir" | "hostPublicKey" | "knownHostsLine" | "knownHostsPath" | "clientKeyPath" | "users" | "pid" | "logPath" | "stop"
>;

export type DropbearSupport = ServerSupport;

/**
 * Whether this machine can run a throwaway dropbear (root, `dropbear` and `dropbearkey`). When it cannot and
 * `process.env.CI` is set, this throws: CI must run the dropbear cells, never skip them.
 */
export function dropbearSupport(): DropbearSupport {
  let reason: string | undefined;
  if (process.platform !== "linux") reason = "a throwaway dropbear needs Linux";
  else if (process.getuid?.() !== 0) reason = "a throwaway dropbear needs root (it uses the test accounts)";
  else if (!executable(DROPBEAR_PATH) || !executable(DROPBEARKEY_PATH)) reason = "dropbear is missing (install dropbear-bin)";
  return serverSupport("dropbear", reason);
}

/** Start a throwaway dropbear. Rejects (with the log's tail) when it does not answer with its host key in time. */
export async function startDropbear(): Promise<Dropbear> {
  const support = dropbearSupport();
  if (!support.available) throw new Error(`cannot start dropbear: ${support.reason}`);
  const accounts = await ensureTestAccounts();
  // A stale instance's listener runs with its host key from its own folder.
  await sweepStaleFolders(INSTANCE_PREFIX, (entry, dir) => entry.args.includes(`${dir}/`));
  const dir = await ownedFolder(INSTANCE_PREFIX);
  try {
    const keyPath = join(dir, "dropbear_ed25519_host_key");
    const keygen = await runLocal(DROPBEARKEY_PATH, ["-t", "ed25519", "-f", keyPath]);
    if (keygen.code !== 0) throw new Error(`dropbearkey failed: ${keygen.stderr.trim()}`);
    const hostPublicKey = /^(ssh-ed25519 \S+)/m.exec(keygen.stdout)?.[1];
    if (hostPublicKey === undefined) throw new Error(`dropbearkey printed no public key: ${keygen.stdout}`);
    return await onFreePort(
      async (port) => {
        const instance = new DropbearInstance(dir, port, hostPublicKey, accounts.clientKeyPath, accounts.users, keyPath);
        await writeFile(instance.knownHostsPath, `${instance.knownHostsLine}\n`);
        await instance.launch();
        return instance;
      },
      (error) => /Address already in use|Failed listening/.test(String(error)),
    );
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
}

class DropbearInstance implements Dropbear {
  readonly host = "127.0.0.1";
  readonly knownHostsPath: string;
  readonly knownHostsLine: string;
  readonly logPath: string;
  #pid = 0;
  #startTime = -1;
  #stopping: Promise<void> | undefined;

  constructor(
    readonly dir: string,
    readonly port: number,
    readonly hostPublicKey: string,
    readonly clientKeyPath: string,
    readonly users: Sshd["users"],
    readonly keyPath: string,
  ) {
    this.knownHostsLine = `[127.0.0.1]:${port} ${hostPublicKey}`;
    this.knownHostsPath = join(dir, "known_hosts");
    this.logPath = join(dir, "dropbear.log");
  }

  get pid(): number {
    return this.#pid;
  }

  async launch(): Promise<void> {
    const log = openSync(this.logPath, "a");
    let child: ChildProcess;
    try {
      // -F foreground, -E log to stderr, -w no root logins, -j -k no port forwarding.
      child = spawn(DROPBEAR_PATH, ["-F", "-E", "-w", "-j", "-k", "-p", `127.0.0.1:${this.port}`, "-r", this.keyPath, "-P", join(this.dir, "dropbear.pid")], {
        stdio: ["ignore", "ignore", log],
      });
    } finally {
      closeSync(log);
    }
    child.unref();
    child.on("error", () => {
      // the ready poll sees the process gone
    });
    if (child.pid === undefined) throw new Error(`could not start ${DROPBEAR_PATH}`);
    this.#pid = child.pid;
    this.#startTime = startTimeOf(child.pid) ?? -1;
    liveServers.add(this);
    try {
      await waitForHostKey({
        name: "dropbear",
        child,
        host: this.host,
        port: this.port,
        hostPublicKey: this.hostPublicKey,
        deadlineMs: READY_DEADLINE_MS,
        logTail: () => this.#logTail(),
      });
    } catch (error) {
      await this.#killTree();
      liveServers.delete(this);
      throw error;
    }
  }

  #logTail(): string {
    try {
      return readFileSync(this.logPath, "utf8").trim().split("\n").slice(-20).join("\n");
    } catch {
      return "";
    }
  }

  stop(): Promise<void> {
    this.#stopping ??= (async () => {
      await this.#killTree();
      liveServers.delete(this);
      await rm(this.dir, { recursive: true, force: true });
    })();
    return this.#stopping;
  }

  async #killTree(): Promise<void> {
    if (this.#pid === 0) return;
    const tree = descendants(await listProcesses(), isAlive(this.#pid, this.#startTime) ? [this.#pid] : []);
    killEach(tree);
    this.#pid = 0;
    await waitGone(tree, 10_000);
  }

  killNowSync(): void {
    if (this.#pid !== 0) killEach(descendants(listProcessesSync(), [this.#pid]));
    rmSync(this.dir, { recursive: true, force: true });
  }
}
