/**
 * A throwaway real dropbear server (Debian `dropbear-bin`) on a free loopback port: the SSH server of routers and
 * embedded devices, which behaves unlike OpenSSH where it matters to an executor (the session command is not a
 * process-group leader; an SSH `signal` reaches only the session's pid).
 *
 * Each instance has its own folder (ed25519 host key, known_hosts file, log) and runs `dropbear -F -E` as a child of
 * the test process. It accepts the same test accounts as `startSshd` (see `test-users.ts` and `shell-users.ts`).
 * Debian's dropbear serves SFTP through `/usr/lib/sftp-server` when `openssh-sftp-server` is installed.
 */
import { readFileSync, rmSync } from "node:fs";
import { rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { descendants, isAlive, killEach, listProcesses, listProcessesSync, startTimeOf, waitGone } from "./process-table.js";
import { runLocal } from "./run-local.js";
import type { Sshd } from "./sshd.js";
import { ensureTestAccounts } from "./test-users.js";
import { executable, serverSupport, type ServerSupport } from "./server-support.js";
import { ServerInstance, onFreePort, ownedFolder, spawnServer, sweepStaleFolders, type ServerInit } from "./server-process.js";

const DROPBEAR_PATH = "/usr/sbin/dropbear";
const DROPBEARKEY_PATH = "/usr/bin/dropbearkey";
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
        const instance = new DropbearInstance({ dir, port, hostPublicKey, clientKeyPath: accounts.clientKeyPath, users: accounts.users }, keyPath);
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

class DropbearInstance extends ServerInstance implements Dropbear {
  #pid = 0;
  #startTime = -1;

  constructor(
    init: ServerInit,
    readonly keyPath: string,
  ) {
    super(init, "dropbear.log");
  }

  get pid(): number {
    return this.#pid;
  }

  async launch(): Promise<void> {
    // -F foreground, -E log to stderr, -w no root logins, -j -k no port forwarding.
    const args = ["-F", "-E", "-w", "-j", "-k", "-p", `127.0.0.1:${this.port}`, "-r", this.keyPath, "-P", join(this.dir, "dropbear.pid")];
    const child = spawnServer(DROPBEAR_PATH, args, this.logPath);
    this.#pid = child.pid;
    this.#startTime = startTimeOf(child.pid) ?? -1;
    await this.awaitReady(child, { name: "dropbear", logTail: () => this.#logTail() });
  }

  #logTail(): string {
    try {
      return readFileSync(this.logPath, "utf8").trim().split("\n").slice(-20).join("\n");
    } catch {
      return "";
    }
  }

  protected override async killTree(): Promise<void> {
    if (this.#pid === 0) return;
    const tree = descendants(await listProcesses(), isAlive(this.#pid, this.#startTime) ? [this.#pid] : []);
    killEach(tree);
    this.#pid = 0;
    await waitGone(tree, 10_000);
  }

  override killNowSync(): void {
    if (this.#pid !== 0) killEach(descendants(listProcessesSync(), [this.#pid]));
    rmSync(this.dir, { recursive: true, force: true });
  }
}
