/**
 * The fault suites' view of this machine's processes (the test sshd is local, so its sessions are visible here):
 * who descends from whom, the sshd process serving a command, and what a test left running.
 */
import { readdirSync, readFileSync } from "node:fs";

export interface ProcessInfo {
  readonly pid: number;
  readonly ppid: number;
  readonly uid: number;
  readonly state: string;
  /** Arguments joined by spaces; `[comm]` when there are none. */
  readonly args: string;
}

function read(pid: number): ProcessInfo | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, "utf8");
    const close = stat.lastIndexOf(")");
    const fields = stat.slice(close + 2).split(" ");
    const uid = /^Uid:\s+(\d+)\s+(\d+)/m.exec(status);
    const args = cmdline.replace(/\0+$/, "").split("\0").join(" ");
    return {
      pid,
      ppid: Number(fields[1]),
      state: fields[0] ?? "?",
      uid: uid ? Number(uid[2]) : -1,
      args: args || `[${stat.slice(stat.indexOf("(") + 1, close)}]`,
    };
  } catch {
    return undefined;
  }
}

/** Every live (not zombie) process on the machine. */
export function processTable(): ProcessInfo[] {
  const out: ProcessInfo[] = [];
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    const entry = read(Number(name));
    if (entry && entry.state !== "Z" && entry.state !== "X") out.push(entry);
  }
  return out;
}

/** `root`'s descendants (not `root` itself) in `table`. */
export function descendantsOf(root: number, table: readonly ProcessInfo[] = processTable()): ProcessInfo[] {
  const children = new Map<number, ProcessInfo[]>();
  for (const entry of table) {
    const list = children.get(entry.ppid);
    if (list) list.push(entry);
    else children.set(entry.ppid, [entry]);
  }
  const out: ProcessInfo[] = [];
  const queue = [...(children.get(root) ?? [])];
  while (queue.length > 0) {
    const entry = queue.shift() as ProcessInfo;
    out.push(entry);
    queue.push(...(children.get(entry.pid) ?? []));
  }
  return out;
}

/** The uid of a local account. */
export function uidOf(user: string): number {
  for (const line of readFileSync("/etc/passwd", "utf8").split("\n")) {
    const fields = line.split(":");
    if (fields[0] === user && fields[2] !== undefined) return Number(fields[2]);
  }
  throw new Error(`no local account named ${user}`);
}

/**
 * The per-connection sshd processes running as the login user (`sshd: user@notty`, the "user child") under the
 * listener `listenerPid`. Killing one drops exactly that connection (killing the root `[priv]` monitor does not).
 */
export function sshdUserChildren(listenerPid: number, user: string): ProcessInfo[] {
  const uid = uidOf(user);
  return descendantsOf(listenerPid).filter((entry) => entry.uid === uid && entry.args.startsWith("sshd:"));
}

/**
 * The user child serving the remote command whose command line contains `marker`, or undefined. (The local `ssh`
 * client of the openssh transport carries the marker too; only a process with an sshd ancestor counts.)
 */
export function sshdChildServing(marker: string): ProcessInfo | undefined {
  const table = processTable();
  const byPid = new Map(table.map((entry) => [entry.pid, entry]));
  for (const command of table.filter((entry) => entry.args.includes(marker) && !entry.args.startsWith("sshd:"))) {
    let current = byPid.get(command.ppid);
    for (let depth = 0; current && depth < 32; depth++) {
      if (current.args.startsWith("sshd:") && current.uid !== 0) return current;
      current = byPid.get(current.ppid);
    }
  }
  return undefined;
}

/** Processes of `user` under the sshd listener `listenerPid` other than sshd's own per-connection processes. */
export function remoteCommandsUnder(listenerPid: number, user: string): ProcessInfo[] {
  const uid = uidOf(user);
  return descendantsOf(listenerPid).filter((entry) => entry.uid === uid && !entry.args.startsWith("sshd:"));
}

/**
 * The user's remote processes under `listenerPid` that run something: sessions an open openssh connection keeps ready
 * (a perl exit waiter reading its command from stdin, or an idle session worker, with no process under it) run
 * nothing and are left out.
 */
export function busyRemoteCommandsUnder(listenerPid: number, user: string): ProcessInfo[] {
  const table = processTable();
  const uid = uidOf(user);
  const parents = new Set(table.map((entry) => entry.ppid));
  return descendantsOf(listenerPid, table).filter(
    (entry) =>
      entry.uid === uid &&
      !entry.args.startsWith("sshd:") &&
      !(entry.args.startsWith("perl -e ") && entry.args.includes(":ready:perl") && !parents.has(entry.pid)),
  );
}

/** Poll `check` every 50 ms until it holds or `timeoutMs` passes; returns its last verdict. */
export async function eventually(check: () => boolean | Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (await check()) return true;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return check();
}
