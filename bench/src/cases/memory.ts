/**
 * Memory, each figure from a fresh Node process (this file's `runChild`) so nothing measured earlier distorts it:
 * RSS added by 100 idle pooled connections, and peak RSS while 1 GiB moves up and then down.
 * For the openssh transport the ssh processes it starts (ControlMasters, mux clients) are counted too, from /proc.
 */
import { spawn } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { rm, stat } from "node:fs/promises";
import { join } from "node:path";
import { getHeapSpaceStatistics } from "node:v8";
import type { Client } from "ssh2";
import { makeStack, rawConnect, rawEnd, type TransportName } from "../clients.js";
import type { Context } from "../context.js";
import { serverInfo, type ServerInfo } from "../environment.js";
import { MiB, median } from "../stats.js";
import { TUNED, writePayload } from "./transfers.js";

const SECTION = "memory";

type ChildTask =
  | { readonly kind: "idle"; readonly tool: TransportName | "raw"; readonly count: number; readonly server: ServerInfo }
  | { readonly kind: "transfer"; readonly tool: TransportName | "raw"; readonly size: number; readonly payload: string; readonly server: ServerInfo };

interface ChildReport {
  /** Node's RSS added (idle) or peak added (transfer), bytes. */
  readonly nodeDelta: number;
  /**
   * V8 heap used + external memory, code spaces left out (idle), bytes, scaled to all the connections from what the
   * second half of them added: steadier than RSS for small differences.
   */
  readonly heapDelta: number;
  /** RSS of the child processes (openssh) at the end (idle) or at their peak (transfer), bytes. */
  readonly childRss: number;
  /** The same as PSS: shared library pages divided among the processes that share them. */
  readonly childPss: number;
  readonly childCount: number;
}

/** RSS and PSS (shared pages split between the processes sharing them) summed over this process's descendants. */
function descendantsRss(): { rss: number; pss: number; count: number } {
  const parents = new Map<number, number>();
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const text = readFileSync(`/proc/${name}/stat`, "utf8");
      const fields = text.slice(text.lastIndexOf(")") + 2).split(" ");
      parents.set(Number(name), Number(fields[1]));
    } catch {
      // gone
    }
  }
  const mine = new Set<number>([process.pid]);
  let grew = true;
  while (grew) {
    grew = false;
    for (const [pid, parent] of parents) {
      if (!mine.has(pid) && mine.has(parent)) {
        mine.add(pid);
        grew = true;
      }
    }
  }
  mine.delete(process.pid);
  let rss = 0;
  let pss = 0;
  for (const pid of mine) {
    try {
      const rollup = readFileSync(`/proc/${pid}/smaps_rollup`, "utf8");
      rss += Number(/^Rss:\s+(\d+)/m.exec(rollup)?.[1] ?? 0) * 1024;
      pss += Number(/^Pss:\s+(\d+)/m.exec(rollup)?.[1] ?? 0) * 1024;
    } catch {
      // gone
    }
  }
  return { rss, pss, count: mine.size };
}

const gc = (): void => (globalThis as { gc?: () => void }).gc?.();

/**
 * V8 heap used + external memory, without the code spaces: compiled and optimised code belongs to the process, not to
 * a connection, and V8 tiers functions up at times of its own, which made the same figure wander by a third.
 */
const heap = (): number => {
  const usage = process.memoryUsage();
  let code = 0;
  for (const space of getHeapSpaceStatistics()) if (space.space_name.startsWith("code")) code += space.space_used_size;
  return usage.heapUsed - code + usage.external;
};

async function settle(): Promise<void> {
  for (let index = 0; index < 5; index++) {
    gc();
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

/** The body of a child process: one measurement, reported as JSON on stdout. */
export async function runChild(task: ChildTask): Promise<ChildReport> {
  const server = task.server;
  const target = { host: server.host, port: server.port, user: server.user };
  if (task.kind === "idle") {
    // One connection opened and closed first, so lazy one-time costs (code compiled on first use, crypto set-up,
    // the pool's own structures) are not counted as the cost of idle connections.
    if (task.tool === "raw") await rawEnd(await rawConnect(server, true));
    else {
      const stack = makeStack(task.tool, server);
      await stack.executor.runCommand({ ...target, cmd: "true" });
      await stack.close();
    }
    await settle();
    const before = process.memoryUsage.rss();
    // The heap figure is a slope: what the second half of the connections added to the first half's. The stack and
    // its first connections cost what they cost once; only what every further connection adds is counted.
    const half = Math.floor(task.count / 2);
    let openUpTo: (count: number) => Promise<void>;
    let close: () => Promise<unknown>;
    if (task.tool === "raw") {
      const clients: Client[] = [];
      openUpTo = async (count) => {
        while (clients.length < count) clients.push(await rawConnect(server, true));
      };
      close = () => Promise.all(clients.map((client) => rawEnd(client)));
    } else {
      const stack = makeStack(task.tool, server, { pool: { maxConnectionsPerKey: task.count, maxConnections: task.count, idleTimeoutMs: 600_000 } });
      openUpTo = async (count) => {
        const open = await stack.pool.warm(target, count);
        if (open !== count) throw new Error(`the pool opened ${open} connections instead of ${count}`);
      };
      close = () => stack.close();
    }
    await openUpTo(half);
    await settle();
    const heapHalf = heap();
    await openUpTo(task.count);
    await settle();
    const after = process.memoryUsage.rss();
    const heapAfter = heap();
    const children = descendantsRss();
    await close();
    return {
      nodeDelta: after - before,
      heapDelta: ((heapAfter - heapHalf) * task.count) / (task.count - half),
      childRss: children.rss,
      childPss: children.pss,
      childCount: children.count,
    };
  }

  const remote = join(server.remoteDir, `memory-${task.tool}`);
  const local = join(server.localDir, `memory-${task.tool}-back`);
  let move: (direction: "upload" | "download", from: string, to: string) => Promise<void>;
  let close: () => Promise<unknown>;
  if (task.tool === "raw") {
    const client = await rawConnect(server, true);
    move = (direction, from, to) =>
      new Promise((resolve, reject) =>
        client.sftp((error, sftp) => {
          if (error) return reject(error);
          const done = (failure: Error | null | undefined) => {
            sftp.end();
            if (failure) reject(failure);
            else resolve();
          };
          if (direction === "upload") sftp.fastPut(from, to, TUNED, done);
          else sftp.fastGet(from, to, TUNED, done);
        }),
      );
    close = () => rawEnd(client);
  } else {
    const stack = makeStack(task.tool, server);
    await stack.pool.warm(target, 1);
    move = async (direction, source, destination) => {
      await stack.executor.transferFile({ ...target, direction, source, destination });
    };
    close = () => stack.close();
  }
  await settle();
  const before = process.memoryUsage.rss();
  let peak = before;
  let childPeak = 0;
  let childPssPeak = 0;
  let childCount = 0;
  const timer = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage.rss());
    const children = descendantsRss();
    childPeak = Math.max(childPeak, children.rss);
    childPssPeak = Math.max(childPssPeak, children.pss);
    childCount = Math.max(childCount, children.count);
  }, 25);
  try {
    await move("upload", task.payload, remote);
    await move("download", remote, local);
  } finally {
    clearInterval(timer);
    await rm(remote, { force: true });
    await rm(local, { force: true });
  }
  peak = Math.max(peak, process.memoryUsage.rss());
  await close();
  return { nodeDelta: peak - before, heapDelta: 0, childRss: childPeak, childPss: childPssPeak, childCount };
}

function child(task: ChildTask): Promise<ChildReport> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--expose-gc", process.argv[1] as string, "--child", JSON.stringify(task)], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    let stdout = "";
    child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
    child.on("error", reject);
    child.on("close", (code) => {
      if (code !== 0) return reject(new Error(`memory child ${task.kind}/${task.tool} exited ${code}`));
      try {
        resolve(JSON.parse(stdout.trim().split("\n").pop() ?? "") as ChildReport);
      } catch (error) {
        reject(error);
      }
    });
  });
}

function opensshNote(reports: readonly ChildReport[]): string {
  const report = reports[0] as ChildReport;
  const each = (bytes: number) => `${(bytes / Math.max(1, report.childCount) / 1024).toFixed(0)} KiB each`;
  return (
    `node ${(report.nodeDelta / MiB).toFixed(1)} MiB + ${report.childCount} ssh processes: RSS ${(report.childRss / MiB).toFixed(1)} MiB ` +
    `(${each(report.childRss)}), PSS ${(report.childPss / MiB).toFixed(1)} MiB (${each(report.childPss)})`
  );
}

const TOOL_NAMES: Record<TransportName | "raw", string> = { ssh2: "tunnel (ssh2)", openssh: "tunnel (openssh)", raw: "raw ssh2" };

export async function memory(context: Context): Promise<void> {
  const { environment, options } = context;
  const server = serverInfo(environment);
  const count = options.quick ? 20 : 100;
  const rounds = options.quick ? 1 : 3;
  const idle = new Map<TransportName | "raw", ChildReport[]>();
  // Round-robin, like every other case: one child per tool per round.
  for (let round = 0; round < rounds; round++) {
    for (const tool of ["ssh2", "openssh", "raw"] as const) idle.set(tool, [...(idle.get(tool) ?? []), await child({ kind: "idle", tool, count, server })]);
  }
  for (const tool of ["ssh2", "openssh", "raw"] as const) {
    const reports = idle.get(tool) ?? [];
    const withChildren = tool === "openssh";
    context.record({
      section: SECTION,
      case: `${count} idle connections, RSS added`,
      tool: `${TOOL_NAMES[tool]}${withChildren ? ": node + ssh masters" : tool === "raw" ? " clients" : " pool"}`,
      unit: "MiB",
      samples: reports.map((report) => (report.nodeDelta + (withChildren ? report.childRss : 0)) / MiB),
      // No ratio: the raw clients' RSS difference is within RSS noise (it can come out negative).
      against: [],
      note: `${withChildren ? `${opensshNote(reports)}; ` : ""}node heap + external ${(median(reports.map((report) => report.heapDelta)) / MiB).toFixed(1)} MiB`,
    });
  }
  // The steadier figure for one connection: what Node holds for it (V8 heap used + external memory), RSS aside.
  for (const tool of ["ssh2", "raw"] as const) {
    context.record({
      section: SECTION,
      case: `one idle connection (of ${count}; what the second half added), V8 heap without code + external`,
      tool: tool === "raw" ? "raw ssh2 client" : "tunnel (ssh2) pooled connection",
      unit: "KiB",
      samples: (idle.get(tool) ?? []).map((report) => report.heapDelta / count / 1024),
      against: tool === "raw" ? [] : ["raw ssh2 client"],
    });
  }

  const size = (options.quick ? 128 : 1024) * MiB;
  const payload = join(environment.localDir, "memory-payload");
  await writePayload(payload, size);
  try {
    if ((await stat(payload)).size !== size) throw new Error("payload size");
    for (const tool of ["ssh2", "openssh", "raw"] as const) {
      const reports: ChildReport[] = [];
      // One round: the peak over 2 GiB moved is the figure, and each round takes a minute on a loaded machine.
      reports.push(await child({ kind: "transfer", tool, size, payload, server }));
      context.record({
        section: SECTION,
        case: `${size / MiB} MiB up then down, peak RSS added`,
        tool: tool === "raw" ? "raw ssh2 SFTP tuned" : `${TOOL_NAMES[tool]} executor`,
        unit: "MiB",
        samples: reports.map((report) => report.nodeDelta / MiB),
        against: tool === "raw" ? [] : ["raw ssh2 SFTP tuned"],
        ...(tool === "openssh"
          ? {
              note:
                `plus the ssh processes it runs, peaking at RSS ${(Math.max(...reports.map((report) => report.childRss)) / MiB).toFixed(1)} MiB ` +
                `(PSS ${(Math.max(...reports.map((report) => report.childPss)) / MiB).toFixed(1)} MiB)`,
            }
          : {}),
      });
    }
  } finally {
    await rm(payload, { force: true });
  }
}
