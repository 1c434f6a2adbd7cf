/**
 * What every throwaway SSH server the kit starts (sshd, dropbear) does the same way around its process: a free
 * loopback port, a private folder that names its owner, a sweep of the folders of test processes that died without
 * `stop()`, the wait until the server answers with its host key, and the exit hook that kills what is still running.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { closeSync, openSync } from "node:fs";
import { createServer } from "node:net";
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { isAlive, killTrees, listProcesses, startTimeOf, type ProcessEntry } from "./process-table.js";
import { runLocal } from "./run-local.js";
import type { Sshd } from "./sshd.js";

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

/**
 * Run `launch` on a free port; when another process took the port between the pick and the bind (`portTaken` says
 * so of the error), try another one, five times at most.
 */
export async function onFreePort<T>(launch: (port: number) => Promise<T>, portTaken: (error: unknown) => boolean): Promise<T> {
  let lastError: unknown;
  for (let attempt = 0; attempt < 5; attempt++) {
    try {
      return await launch(await freePort());
    } catch (error) {
      lastError = error;
      if (!portTaken(error)) throw error;
    }
  }
  throw lastError;
}

/**
 * A new folder `<tmpdir>/<prefix>XXXXXX` with an `owner` file naming this process, so that a later launch in
 * another process cleans it up once this process is gone (see `sweepStaleFolders`).
 */
export async function ownedFolder(prefix: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  try {
    await writeFile(join(dir, "owner"), `${process.pid} ${startTimeOf(process.pid) ?? ""}\n`);
    return dir;
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
}

const sweeps = new Map<string, Promise<void>>();

/**
 * Once per process and prefix: clean up after test processes that died without `stop()` (killed by a signal, say).
 * For each folder whose owner is gone, kill the processes that run from it (`runsFrom`) with everything under them,
 * and remove the folder. A folder without an owner file is being created right now, unless it is old and nothing
 * runs from it. Never rejects: a failed sweep leaves the folders for the next run.
 */
export function sweepStaleFolders(prefix: string, runsFrom: (entry: ProcessEntry, dir: string) => boolean): Promise<void> {
  let sweep = sweeps.get(prefix);
  if (sweep === undefined) {
    sweep = sweepNow(prefix, runsFrom).catch(() => {});
    sweeps.set(prefix, sweep);
  }
  return sweep;
}

async function sweepNow(prefix: string, runsFrom: (entry: ProcessEntry, dir: string) => boolean): Promise<void> {
  const table = await listProcesses();
  for (const entry of await readdir(tmpdir(), { withFileTypes: true })) {
    if (!entry.isDirectory() || !entry.name.startsWith(prefix)) continue;
    const dir = join(tmpdir(), entry.name);
    const owner = await readFile(join(dir, "owner"), "utf8").catch(() => undefined);
    const listeners = table.filter((candidate) => runsFrom(candidate, dir));
    if (owner === undefined) {
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

export interface HostKeyWait {
  /** The server's name in errors (`sshd`, `dropbear`). */
  readonly name: string;
  readonly child: ChildProcess;
  readonly host: string;
  readonly port: number;
  /** `ssh-ed25519 AAAA...`: the key the server must answer with. */
  readonly hostPublicKey: string;
  readonly deadlineMs: number;
  /** The end of the server's log, for the errors. */
  readonly logTail: () => string;
  /** The error when the process exits first; default: one that says so, with the log's tail. */
  readonly exitError?: (log: string) => Error;
}

/** Resolves once the server answers `ssh-keyscan` with its host key; rejects when it exits first or the deadline passes. */
export async function waitForHostKey(wait: HostKeyWait): Promise<void> {
  const { name, child, host, port, hostPublicKey, deadlineMs, logTail } = wait;
  const deadline = Date.now() + deadlineMs;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null || !isAlive(child.pid ?? 0)) {
      const log = logTail();
      throw wait.exitError?.(log) ?? new Error(`${name} exited before it was ready:\n${log}`);
    }
    const scan = await runLocal("ssh-keyscan", ["-T", "1", "-t", "ed25519", "-p", String(port), host], {
      timeoutMs: 5_000,
    }).catch(() => undefined);
    if (scan?.stdout.includes(hostPublicKey)) return;
    if (Date.now() > deadline) throw new Error(`${name} did not answer with its host key within ${deadlineMs} ms:\n${logTail()}`);
    await sleep(30);
  }
}

/** A running server that can be killed synchronously, from the process's exit hook. */
export interface KilledAtExit {
  killNowSync(): void;
}

const live = new Set<KilledAtExit>();
let exitHookInstalled = false;

/**
 * The servers still running, so that a test process that exits without `stop()` leaves none behind: `add` when one
 * starts, `delete` once it is stopped.
 */
export const liveServers = {
  add(server: KilledAtExit): void {
    live.add(server);
    if (exitHookInstalled) return;
    exitHookInstalled = true;
    process.once("exit", () => {
      for (const running of live) running.killNowSync();
    });
  },
  delete(server: KilledAtExit): void {
    live.delete(server);
  },
};

/** What a throwaway server's instance is made from: its folder, port and host key, and who may log in. */
export interface ServerInit {
  readonly dir: string;
  readonly port: number;
  readonly hostPublicKey: string;
  readonly clientKeyPath: string;
  readonly users: Sshd["users"];
}

/** How long a server has to answer with its host key after it was started. */
const READY_DEADLINE_MS = 10_000;

/**
 * One running throwaway server: what tests read of it (its address, its known_hosts line and file, its log) and the
 * wait until it is ready. The server kinds add their process handling.
 */
export abstract class ServerInstance implements KilledAtExit {
  readonly host = "127.0.0.1";
  readonly dir: string;
  readonly port: number;
  readonly hostPublicKey: string;
  readonly clientKeyPath: string;
  readonly users: Sshd["users"];
  readonly knownHostsPath: string;
  readonly knownHostsLine: string;
  readonly logPath: string;

  constructor(init: ServerInit, logName: string) {
    this.dir = init.dir;
    this.port = init.port;
    this.hostPublicKey = init.hostPublicKey;
    this.clientKeyPath = init.clientKeyPath;
    this.users = init.users;
    this.knownHostsLine = `[127.0.0.1]:${init.port} ${init.hostPublicKey}`;
    this.knownHostsPath = join(init.dir, "known_hosts");
    this.logPath = join(init.dir, logName);
  }

  #stopping: Promise<void> | undefined;

  /** Synchronous clean-up for the process's exit hook. */
  abstract killNowSync(): void;

  /** Kill the server's processes and wait until they are gone. */
  protected abstract killTree(): Promise<void>;

  /** `stop()` was called. */
  protected get stopped(): boolean {
    return this.#stopping !== undefined;
  }

  /** Wait until `child` answers with the host key; when it does not, kill what it started and throw. */
  protected async awaitReady(child: ChildProcess, wait: Pick<HostKeyWait, "name" | "logTail" | "exitError">): Promise<void> {
    liveServers.add(this);
    try {
      await waitForHostKey({ ...wait, child, host: this.host, port: this.port, hostPublicKey: this.hostPublicKey, deadlineMs: READY_DEADLINE_MS });
    } catch (error) {
      await this.killTree();
      liveServers.delete(this);
      throw error;
    }
  }

  stop(): Promise<void> {
    this.#stopping ??= (async () => {
      await this.killTree();
      liveServers.delete(this);
      await rm(this.dir, { recursive: true, force: true });
    })();
    return this.#stopping;
  }
}

/**
 * Start a server process in the foreground, its stderr appended to `stderrPath`. The test process must be able to exit
 * while the server runs (`stop()` and the exit hook clean up), so the child does not hold it.
 */
export function spawnServer(command: string, args: readonly string[], stderrPath: string, env?: NodeJS.ProcessEnv): ChildProcess & { readonly pid: number } {
  const stderr = openSync(stderrPath, "a");
  let child: ChildProcess;
  try {
    child = spawn(command, args, { stdio: ["ignore", "ignore", stderr], ...(env ? { env } : {}) });
  } finally {
    closeSync(stderr);
  }
  child.unref();
  child.on("error", () => {
    // the ready poll sees the process gone
  });
  if (child.pid === undefined) throw new Error(`could not start ${command}`);
  return child as ChildProcess & { readonly pid: number };
}
