/**
 * One command on many hosts at once. The hosts are ssh_config aliases (`bench-001` ... `bench-200`, HostName
 * 127.0.0.1), so every one is a different pool key and needs a connection of its own, as 200 real hosts would.
 */
import type { Client } from "ssh2";
import { freshSsh, makeStack, rawConnect, rawEnd, rawExec, type TransportName } from "../clients.js";
import type { Context } from "../context.js";

const SECTION = "fan-out: one `true` per host alias, concurrency 32";
const CONCURRENCY = 32;

async function workers(hosts: readonly string[], one: (host: string) => Promise<boolean>): Promise<{ rate: number; failures: number }> {
  let next = 0;
  let failures = 0;
  const startedAt = performance.now();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < hosts.length) {
        const host = hosts[next++] as string;
        if (!(await one(host).catch(() => false))) failures++;
      }
    }),
  );
  return { rate: hosts.length / ((performance.now() - startedAt) / 1000), failures };
}

export async function fanOut(context: Context): Promise<void> {
  const { environment: server, options } = context;
  const hosts = server.aliases.slice(0, options.quick ? 50 : server.aliases.length);
  const rounds = options.quick ? 1 : 3;
  const samples = new Map<string, Array<{ rate: number; failures: number; retries: number }>>();
  const add = (tool: string, value: { rate: number; failures: number; retries: number }) => samples.set(tool, [...(samples.get(tool) ?? []), value]);

  for (let round = 0; round < rounds; round++) {
    context.log(`  round ${round + 1}/${rounds}`);
    for (const name of ["ssh2", "openssh"] as TransportName[]) {
      // A fresh pool each round: every host needs a new connection. The executor's maxConcurrent is the fan-out width.
      const stack = makeStack(name, server, { sshConfig: true, maxConcurrent: CONCURRENCY });
      let retries = 0;
      try {
        const startedAt = performance.now();
        const results = await Promise.allSettled(hosts.map((host) => stack.executor.runCommand({ host, cmd: "true" })));
        const seconds = (performance.now() - startedAt) / 1000;
        let failures = 0;
        for (const result of results) {
          if (result.status === "rejected" || result.value.exitCode !== 0) failures++;
          else retries += result.value.attempts - 1;
        }
        add(`tunnel executor (${name})`, { rate: hosts.length / seconds, failures, retries });
      } finally {
        await stack.close();
      }
    }
    const closing: Promise<void>[] = [];
    add("raw ssh2 (noDelay)", {
      ...(await workers(hosts, async () => {
        // Raw ssh2 reads no ssh_config: it connects to the alias's HostName directly.
        const client: Client = await rawConnect(server, true);
        try {
          return (await rawExec(client, "true")) === 0;
        } finally {
          closing.push(rawEnd(client));
        }
      })),
      retries: 0,
    });
    await Promise.all(closing);
    add("fresh ssh (32 processes)", { ...(await workers(hosts, async (host) => (await freshSsh(server, "true", host, server.sshConfigPath)) === 0)), retries: 0 });
  }
  for (const [tool, values] of samples) {
    const retries = values.reduce((sum, value) => sum + value.retries, 0);
    context.record({
      section: SECTION,
      case: `${hosts.length} hosts`,
      tool,
      unit: "hosts/s",
      samples: values.map((value) => value.rate),
      failures: values.reduce((sum, value) => sum + value.failures, 0),
      against: tool === "raw ssh2 (noDelay)" ? [] : ["raw ssh2 (noDelay)"],
      ...(retries > 0 ? { note: `${retries} retried attempt(s)` } : {}),
    });
  }
}
