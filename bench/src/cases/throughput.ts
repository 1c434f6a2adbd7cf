/**
 * Many short commands on one host at a fixed concurrency, against sshd's default MaxSessions 10:
 * commands per second and commands that failed.
 */
import type { Client } from "ssh2";
import { makeStack, rawConnect, rawEnd, rawExec, type Stack } from "../clients.js";
import type { Context } from "../context.js";

const SECTION = "throughput: `true` × N on one host";

interface Outcome {
  readonly rate: number;
  readonly failures: number;
}

/** Run `count` commands with `concurrency` workers; each worker runs its share one after another. */
async function drive(count: number, concurrency: number, one: (worker: number) => Promise<boolean>): Promise<Outcome> {
  let next = 0;
  let failures = 0;
  const startedAt = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async (_, worker) => {
      while (next < count) {
        next++;
        const ok = await one(worker).catch(() => false);
        if (!ok) failures++;
      }
    }),
  );
  const seconds = (performance.now() - startedAt) / 1000;
  return { rate: count / seconds, failures };
}

export async function throughput(context: Context): Promise<void> {
  const { environment: server, options } = context;
  const count = options.quick ? 100 : 1000;
  const rounds = options.quick ? 1 : 3;
  const target = { host: server.host, port: server.port, user: server.user };
  for (const concurrency of [1, 8, 32]) {
    // The raw baseline's own simple budget: one connection per MaxSessions channels, workers spread over them.
    const connections = Math.ceil(concurrency / server.maxSessions);
    const raw: Client[] = await Promise.all(Array.from({ length: connections }, () => rawConnect(server, true)));
    const stacks: Array<readonly [string, Stack]> = [
      ["tunnel executor (ssh2)", makeStack("ssh2", server)],
      ["tunnel executor (openssh)", makeStack("openssh", server)],
    ];
    try {
      for (const [, stack] of stacks) await stack.pool.warm(target, connections);
      const results = new Map<string, Outcome[]>();
      const add = (tool: string, outcome: Outcome) => results.set(tool, [...(results.get(tool) ?? []), outcome]);
      for (let round = 0; round < rounds; round++) {
        context.log(`  concurrency ${concurrency}, round ${round + 1}/${rounds}`);
        add(
          "raw ssh2 (noDelay, own budget)",
          await drive(count, concurrency, async (worker) => (await rawExec(raw[worker % connections] as Client, "true")) === 0),
        );
        for (const [tool, stack] of stacks) {
          add(tool, await drive(count, concurrency, async () => (await stack.executor.runCommand({ ...target, cmd: "true" })).exitCode === 0));
        }
      }
      for (const [tool, outcomes] of results) {
        context.record({
          section: SECTION,
          case: `${count} commands, concurrency ${concurrency}`,
          tool,
          unit: "cmd/s",
          samples: outcomes.map((outcome) => outcome.rate),
          failures: outcomes.reduce((sum, outcome) => sum + outcome.failures, 0),
          against: tool === "raw ssh2 (noDelay, own budget)" ? [] : ["raw ssh2 (noDelay, own budget)"],
          ...(tool === "raw ssh2 (noDelay, own budget)"
            ? { note: `${connections} connection(s), ≤ ${Math.ceil(concurrency / connections)} channels each` }
            : {}),
        });
      }
    } finally {
      await Promise.all([...raw.map((client) => rawEnd(client)), ...stacks.map(([, stack]) => stack.close())]);
    }
  }
}
