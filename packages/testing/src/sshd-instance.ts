/**
 * One running throwaway sshd: its listener process, the sessions that outlive a restarted listener, and the
 * `restart()`, `crash()` and `stop()` the tests drive it with.
 */
import { existsSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { descendants, isAlive, killEach, listProcesses, listProcessesSync, waitGone, type ProcessEntry } from "./process-table.js";
import { runLocal } from "./run-local.js";
import { childEnvironment } from "./child-environment.js";
import { ServerInstance, spawnServer, type ServerInit } from "./server-process.js";
import { SSHD_PATH } from "./sshd-config.js";
import type { Sshd } from "./sshd.js";

/** The listener could not bind its port: another process took it after it was picked. */
export class PortTakenError extends Error {}

interface Tracked {
  readonly pid: number;
  readonly startTime: number;
}

export class SshdInstance extends ServerInstance implements Sshd {
  #listener: Tracked | undefined;
  /** Sessions that outlived a restarted listener: still this instance's, still to be killed by `stop()`. */
  readonly #orphans: Tracked[] = [];

  constructor(
    init: ServerInit,
    readonly hostCertificate: Sshd["hostCertificate"] = undefined,
  ) {
    super(init, "sshd.log");
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
    const child = spawnServer(SSHD_PATH, ["-D", "-f", config, "-E", this.logPath], stderrPath, childEnvironment());
    const pid = child.pid;
    const entry = (await listProcesses()).find((candidate) => candidate.pid === pid);
    this.#listener = { pid, startTime: entry?.startTime ?? -1 };
    await this.awaitReady(child, {
      name: "sshd",
      logTail: () => this.#logTail(logOffset),
      exitError: (log) =>
        /Address already in use|Cannot bind any address/.test(log) ? new PortTakenError(log) : new Error(`sshd exited before it was ready:\n${log}`),
    });
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
    if (this.stopped) throw new Error("this sshd was stopped");
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
    if (this.stopped) throw new Error("this sshd was stopped");
    await this.killTree();
  }

  /** The listener, the sessions (including ones that outlived a restart) and everything they started. */
  #tree(table: readonly ProcessEntry[]): ProcessEntry[] {
    const roots = [this.#listener, ...this.#orphans]
      .filter((tracked): tracked is Tracked => tracked !== undefined)
      .filter((tracked) => table.some((entry) => entry.pid === tracked.pid && entry.startTime === tracked.startTime))
      .map((tracked) => tracked.pid);
    return descendants(table, roots);
  }

  protected override async killTree(): Promise<void> {
    // Snapshot first, then kill: a killed parent's children are re-parented and would drop out of the tree.
    const tree = this.#tree(await listProcesses());
    killEach(tree);
    this.#orphans.length = 0;
    this.#listener = undefined;
    await waitGone(tree, 10_000);
  }

  /** Synchronous clean-up for the process's exit hook. */
  override killNowSync(): void {
    killEach(this.#tree(listProcessesSync()));
    rmSync(this.dir, { recursive: true, force: true });
  }
}
