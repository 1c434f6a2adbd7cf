/**
 * Many short commands on one host at a fixed concurrency, against sshd's default MaxSessions 10:
 * successful commands per second, and commands that failed.
 */
import { mkdtemp } from "node:fs/promises";
import { join } from "node:path";
import type { Client } from "ssh2";
import { ControlMaster, makeStack, rawConnect, rawEnd, rawExec, type Stack } from "../clients.js";
import { describe, type Context } from "../context.js";

const SECTION = "throughput: `true` × N on one host";
const RAW = "raw ssh2 (noDelay, own budget)";
const RAW_SSH = "ssh -S (ControlMaster, own budget)";

interface Outcome {
  readonly rate: number;
  readonly failures: number;
}

/** Run `count` commands with `concurrency` workers; each worker runs its share one after another. */
async function drive(count: number, concurrency: number, reasons: Set<string>, one: (worker: number) => Promise<void>): Promise<Outcome> {
  let next = 0;
  let failures = 0;
  const startedAt = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async (_, worker) => {
      while (next < count) {
        next++;
        await one(worker).catch((error: unknown) => {
          failures++;
          reasons.add(describe(error));
        });
      }
    }),
  );
  const seconds = (performance.now() - startedAt) / 1000;
  return { rate: (count - failures) / seconds, failures };
}

const ok = (code: number | null): void => {
  if (code !== 0) throw new Error(`exit ${code}`);
};

export async function throughput(context: Context): Promise<void> {
  const { environment: server, options } = context;
  // Tools that start a local process per command (tunnel over openssh, ssh -S) run fewer commands: on a loaded
  // 2-CPU machine 1000 of them at concurrency 1 take minutes, and the rate is what is compared.
  const count = options.quick ? 100 : 1000;
  const processCount = options.quick ? 30 : 200;
  // Two rounds in the full run: at concurrency 1 a round of 1000 commands per tool takes minutes on a loaded machine.
  const rounds = options.quick ? 1 : 2;
  const target = { host: server.host, port: server.port, user: server.user };
  for (const concurrency of [1, 8, 32]) {
    // The raw baselines' own simple budget: one connection per MaxSessions channels, workers spread over them.
    const connections = Math.ceil(concurrency / server.maxSessions);
    const raw: Client[] = await Promise.all(Array.from({ length: connections }, () => rawConnect(server, true)));
    const masters: ControlMaster[] = [];
    for (let index = 0; index < connections; index++) masters.push(new ControlMaster(server, await mkdtemp(join(server.localDir, "cm-"))));
    const ssh2Stack: Stack = makeStack("ssh2", server);
    const opensshStack: Stack = makeStack("openssh", server);
    try {
      await Promise.all(masters.map((master) => master.start()));
      await ssh2Stack.pool.warm(target, connections);
      await opensshStack.pool.warm(target, connections);
      const tools: Array<readonly [string, number, (worker: number) => Promise<void>]> = [
        [RAW, count, async (worker) => ok(await rawExec(raw[worker % connections] as Client, "true"))],
        ["tunnel executor (ssh2)", count, async () => ok((await ssh2Stack.executor.runCommand({ ...target, cmd: "true" })).exitCode)],
        [RAW_SSH, processCount, async (worker) => ok(await (masters[worker % connections] as ControlMaster).exec("true"))],
        ["tunnel executor (openssh)", processCount, async () => ok((await opensshStack.executor.runCommand({ ...target, cmd: "true" })).exitCode)],
      ];
      const results = new Map<string, Outcome[]>();
      const reasons = new Map<string, Set<string>>(tools.map(([tool]) => [tool, new Set<string>()]));
      for (let round = 0; round < rounds; round++) {
        context.log(`  concurrency ${concurrency}, round ${round + 1}/${rounds}`);
        for (const [tool, commands, one] of tools) {
          results.set(tool, [...(results.get(tool) ?? []), await drive(commands, concurrency, reasons.get(tool) as Set<string>, one)]);
        }
      }
      for (const [tool, commands] of tools) {
        const outcomes = results.get(tool) ?? [];
        const baseline = tool === RAW || tool === RAW_SSH;
        const notes = [
          ...(baseline ? [`${connections} connection(s), ≤ ${Math.ceil(concurrency / connections)} channels each`] : []),
          ...[...(reasons.get(tool) ?? [])].slice(0, 2),
        ];
        context.record({
          section: SECTION,
          case: `concurrency ${concurrency}`,
          tool: `${tool}, ${commands} cmds`,
          unit: "cmd/s",
          samples: outcomes.map((outcome) => outcome.rate),
          failures: outcomes.reduce((sum, outcome) => sum + outcome.failures, 0),
          against:
            tool === "tunnel executor (ssh2)" ? [`${RAW}, ${count} cmds`] : tool === "tunnel executor (openssh)" ? [`${RAW_SSH}, ${processCount} cmds`] : [],
          ...(notes.length > 0 ? { note: notes.join("; ") } : {}),
        });
      }
    } finally {
      await Promise.all([
        ...raw.map((client) => rawEnd(client)),
        ...masters.map((master) => master.stop().catch(() => {})),
        ssh2Stack.close(),
        opensshStack.close(),
      ]);
    }
  }
}
