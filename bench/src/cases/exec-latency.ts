/**
 * One `true` on an already open connection, sequentially: what a caller waits for per command once connected.
 */
import { runProcess } from "@tunnel-sh/core";
import type { Connection } from "@tunnel-sh/core";
import { ControlMaster, freshSsh, makeStack, makeTransport, nodeSshConnect, rawConnect, rawEnd, rawExec } from "../clients.js";
import { interleaved, type Context } from "../context.js";
import { timed } from "../stats.js";

const SECTION = "exec: one `true` on an open connection";

export async function execLatency(context: Context): Promise<void> {
  const { environment: server, options } = context;
  const rounds = options.quick ? 15 : 60;
  const warmup = 5;
  const target = { host: server.host, port: server.port, user: server.user };

  const ssh2Stack = makeStack("ssh2", server);
  const opensshStack = makeStack("openssh", server);
  const bareTransport = makeTransport("ssh2", server);
  let bare: Connection | undefined;
  const raw = await rawConnect(server, true);
  const rawNagle = await rawConnect(server, false);
  const nodeSsh = await nodeSshConnect(server);
  const master = new ControlMaster(server, server.localDir);
  try {
    await ssh2Stack.pool.warm(target, 1);
    await opensshStack.pool.warm(target, 1);
    bare = await bareTransport.connect(target);
    const connection = bare;
    await master.start();
    const check = (code: number | null): void => {
      if (code !== 0) throw new Error(`\`true\` exited ${code}`);
    };
    // In-process tools also report this process's CPU time per command (user + system): a figure that other jobs
    // on the machine disturb far less than wall time. Tools that run the ssh binary spend theirs in child processes.
    const cpu = new Map<string, number[]>();
    const withCpu = (tool: string, measure: () => Promise<number>) => async (): Promise<number> => {
      const before = process.cpuUsage();
      const ms = await measure();
      const used = process.cpuUsage(before);
      cpu.set(tool, [...(cpu.get(tool) ?? []), (used.user + used.system) / 1000]);
      return ms;
    };
    const inProcess: Array<readonly [string, () => Promise<number>]> = [
      ["tunnel executor (ssh2)", () => timed(async () => check((await ssh2Stack.executor.runCommand({ ...target, cmd: "true" })).exitCode))],
      ["tunnel ssh2 connection, no executor", () => timed(async () => check((await runProcess(connection, { command: "true" })).exitCode))],
      ["raw ssh2 (noDelay)", () => timed(async () => check(await rawExec(raw, "true")))],
      ["raw ssh2 (default, Nagle on)", () => timed(async () => check(await rawExec(rawNagle, "true")))],
      ["node-ssh", () => timed(async () => check((await nodeSsh.execCommand("true")).code))],
    ];
    const tools: Array<readonly [string, () => Promise<number>]> = [
      ...inProcess.map(([tool, measure]) => [tool, withCpu(tool, measure)] as const),
      ["tunnel executor (openssh)", () => timed(async () => check((await opensshStack.executor.runCommand({ ...target, cmd: "true" })).exitCode))],
      ["ssh -S (ControlMaster)", () => timed(async () => check(await master.exec("true")))],
      ["fresh ssh", () => timed(async () => check(await freshSsh(server, "true")))],
    ];
    await interleaved(warmup, tools);
    cpu.clear();
    const samples = await interleaved(rounds, tools);
    const against: Record<string, string[]> = {
      "tunnel executor (ssh2)": ["raw ssh2 (noDelay)"],
      "tunnel ssh2 connection, no executor": ["raw ssh2 (noDelay)"],
      "raw ssh2 (default, Nagle on)": ["raw ssh2 (noDelay)"],
      "node-ssh": ["raw ssh2 (noDelay)"],
      "tunnel executor (openssh)": ["ssh -S (ControlMaster)"],
      "fresh ssh": ["ssh -S (ControlMaster)"],
    };
    for (const [tool, values] of samples) {
      context.record({ section: SECTION, case: `${rounds} sequential rounds, wall time`, tool, unit: "ms", samples: values, against: against[tool] ?? [] });
    }
    for (const [tool, values] of cpu) {
      context.record({
        section: SECTION,
        case: `${rounds} sequential rounds, this process's CPU time`,
        tool,
        unit: "ms",
        samples: values,
        against: tool === "raw ssh2 (noDelay)" ? [] : ["raw ssh2 (noDelay)"],
      });
    }
  } finally {
    await master.stop().catch(() => {});
    nodeSsh.dispose();
    await Promise.all([rawEnd(raw), rawEnd(rawNagle), bare?.close(), ssh2Stack.close(), opensshStack.close()]);
  }
}
