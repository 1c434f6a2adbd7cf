/**
 * A snapshot of this machine's processes, read from /proc. The test servers tunnel starts are local, so their
 * "remote" processes are visible here; tests use this to prove that a process is really gone.
 */
import { readdirSync, readFileSync } from "node:fs";
import { readdir, readFile } from "node:fs/promises";
import { setTimeout as sleep } from "node:timers/promises";

export interface ProcessEntry {
  readonly pid: number;
  readonly ppid: number;
  /** One-letter state from /proc/<pid>/stat (`R`, `S`, `Z`, ...). */
  readonly state: string;
  /** Effective user id. */
  readonly uid: number;
  /** Start time in clock ticks since boot: together with `pid` it names one process even when pids are reused. */
  readonly startTime: number;
  /** The command line, arguments joined by spaces; `[comm]` when it has none (zombies, kernel threads). */
  readonly args: string;
}

function parse(pid: number, stat: string, status: string, cmdline: string): ProcessEntry | undefined {
  // comm may hold spaces and parentheses: the fields start after the last ')'.
  const close = stat.lastIndexOf(")");
  if (close === -1) return undefined;
  const comm = stat.slice(stat.indexOf("(") + 1, close);
  const fields = stat.slice(close + 2).split(" ");
  const uidLine = /^Uid:\s+(\d+)\s+(\d+)/m.exec(status);
  const args = cmdline.replace(/\0+$/, "").split("\0").join(" ");
  return {
    pid,
    ppid: Number(fields[1]),
    state: fields[0] ?? "?",
    uid: uidLine ? Number(uidLine[2]) : -1,
    startTime: Number(fields[19]),
    args: args || `[${comm}]`,
  };
}

function pids(names: readonly string[]): number[] {
  return names.filter((name) => /^\d+$/.test(name)).map(Number);
}

/** Every process on the machine (processes that exit while being read are left out). */
export async function listProcesses(): Promise<ProcessEntry[]> {
  const entries = await Promise.all(
    pids(await readdir("/proc")).map(async (pid) => {
      try {
        const [stat, status, cmdline] = await Promise.all([
          readFile(`/proc/${pid}/stat`, "utf8"),
          readFile(`/proc/${pid}/status`, "utf8"),
          readFile(`/proc/${pid}/cmdline`, "utf8"),
        ]);
        return parse(pid, stat, status, cmdline);
      } catch {
        return undefined;
      }
    }),
  );
  return entries.filter((entry): entry is ProcessEntry => entry !== undefined);
}

/** The same snapshot, synchronously (for clean-up while the process exits). */
export function listProcessesSync(): ProcessEntry[] {
  const out: ProcessEntry[] = [];
  for (const pid of pids(readdirSync("/proc"))) {
    const entry = readEntrySync(pid); // undefined when it exited while being read
    if (entry) out.push(entry);
  }
  return out;
}

/** `roots` and all their descendants in `table`, parents before children. */
export function descendants(table: readonly ProcessEntry[], roots: readonly number[]): ProcessEntry[] {
  const children = new Map<number, ProcessEntry[]>();
  for (const entry of table) {
    const list = children.get(entry.ppid);
    if (list) list.push(entry);
    else children.set(entry.ppid, [entry]);
  }
  const byPid = new Map(table.map((entry) => [entry.pid, entry]));
  const out: ProcessEntry[] = [];
  const seen = new Set<number>();
  const queue = roots.map((pid) => byPid.get(pid)).filter((entry): entry is ProcessEntry => entry !== undefined);
  while (queue.length > 0) {
    const entry = queue.shift() as ProcessEntry;
    if (seen.has(entry.pid)) continue;
    seen.add(entry.pid);
    out.push(entry);
    queue.push(...(children.get(entry.pid) ?? []));
  }
  return out;
}

/** Whether the process `pid` (started at `startTime`, when given) still exists and is not a zombie. */
export function isAlive(pid: number, startTime?: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    if (fields[0] === "Z" || fields[0] === "X") return false;
    return startTime === undefined || Number(fields[19]) === startTime;
  } catch {
    return false;
  }
}

/** The start time of process `pid` (see `ProcessEntry.startTime`), or undefined when there is no such process. */
export function startTimeOf(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19]);
  } catch {
    return undefined;
  }
}

/** The ancestors of process `pid`, nearest first (its parent, then the parent's parent, ...), up to pid 1. */
export function ancestorsOf(pid: number): ProcessEntry[] {
  const chain: ProcessEntry[] = [];
  let current = pid;
  while (current > 1 && chain.length < 256) {
    const entry = readEntrySync(current);
    if (!entry) break;
    if (entry.pid !== pid) chain.push(entry);
    current = entry.ppid;
  }
  return chain;
}

function readEntrySync(pid: number): ProcessEntry | undefined {
  try {
    return parse(pid, readFileSync(`/proc/${pid}/stat`, "utf8"), readFileSync(`/proc/${pid}/status`, "utf8"), readFileSync(`/proc/${pid}/cmdline`, "utf8"));
  } catch {
    return undefined;
  }
}

/** The uid of a local account, from /etc/passwd; undefined when there is no such account. */
export function uidOf(user: string): number | undefined {
  for (const line of readFileSync("/etc/passwd", "utf8").split("\n")) {
    const fields = line.split(":");
    if (fields[0] === user && fields[2] !== undefined) return Number(fields[2]);
  }
  return undefined;
}

/** SIGKILL `roots` and all their descendants in `table`; a process already gone is what was asked for. */
export function killTrees(table: readonly ProcessEntry[], roots: readonly number[]): void {
  killEach(descendants(table, roots));
}

/** SIGKILL each of `processes`; one already gone is what was asked for. */
export function killEach(processes: readonly { readonly pid: number }[]): void {
  for (const victim of processes) {
    try {
      process.kill(victim.pid, "SIGKILL");
    } catch {
      // gone
    }
  }
}

/** Resolves once none of `processes` is alive (a reused pid does not count); rejects naming the ones left after `timeoutMs`. */
export async function waitGone(processes: readonly { readonly pid: number; readonly startTime: number }[], timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (processes.some((entry) => isAlive(entry.pid, entry.startTime))) {
    if (Date.now() > deadline) {
      const left = processes.filter((entry) => isAlive(entry.pid, entry.startTime)).map((entry) => entry.pid);
      throw new Error(`processes ${left.join(", ")} did not exit within ${timeoutMs} ms`);
    }
    await sleep(20);
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
