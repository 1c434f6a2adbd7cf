/**
 * One command on many hosts at once. The hosts are ssh_config aliases (`bench-001` ... `bench-200`, HostName
 * 127.0.0.1), so every one is a different pool key and needs a connection of its own, as 200 real hosts would.
 * pssh (`parallel-ssh`, one ssh process per host) is the baseline of the OpenSSH side, when it is installed.
 */
import { spawn } from "node:child_process";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { Client } from "ssh2";
import { makeStack, rawConnect, rawEnd, rawExec, type TransportName } from "../clients.js";
import { describe, type Context } from "../context.js";
import { run, sshOptions } from "../environment.js";

const SECTION = "fan-out: one `true` per host alias, concurrency 32";
const CONCURRENCY = 32;
const PSSH = "pssh (32 processes)";
/** Debian and Ubuntu name pssh's program parallel-ssh; other systems pssh. */
const PSSH_PROGRAMS = ["parallel-ssh", "pssh"];

interface Outcome {
  /** Hosts that ran the command, per second. */
  readonly rate: number;
  readonly failures: number;
  readonly retries: number;
}

/** `CONCURRENCY` workers taking hosts in order; a host whose command throws or fails counts as a failure. */
async function workers(hosts: readonly string[], reasons: Set<string>, one: (host: string) => Promise<void>): Promise<Outcome> {
  let next = 0;
  let failures = 0;
  const startedAt = performance.now();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < hosts.length) {
        const host = hosts[next++] as string;
        await one(host).catch((error: unknown) => {
          failures++;
          reasons.add(describe(error));
        });
      }
    }),
  );
  return { rate: (hosts.length - failures) / ((performance.now() - startedAt) / 1000), failures, retries: 0 };
}

/** The first pssh program on PATH, or undefined. */
async function findPssh(): Promise<string | undefined> {
  for (const program of PSSH_PROGRAMS) {
    const found = await new Promise<boolean>((resolve) => {
      const child = spawn(program, ["--version"], { stdio: "ignore" });
      child.on("error", () => resolve(false));
      child.on("close", (code) => resolve(code === 0));
    });
    if (found) return program;
  }
  return undefined;
}

/**
 * One pssh run over every host: hosts that printed `[SUCCESS]` ran the command; the others are failures, with pssh's
 * line for the first of them as the reason.
 */
function runPssh(program: string, hostsFile: string, hostCount: number, sshArguments: readonly string[], reasons: Set<string>): Promise<Outcome> {
  return new Promise((resolve, reject) => {
    const startedAt = performance.now();
    // -t 0: no timeout of pssh's own; -x: the same ssh options as every other OpenSSH baseline (paths without spaces).
    const child = spawn(program, ["-h", hostsFile, "-p", String(CONCURRENCY), "-t", "0", "-x", [...sshArguments, "-T"].join(" "), "true"], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on("data", () => undefined);
    child.on("error", reject);
    child.on("close", () => {
      const seconds = (performance.now() - startedAt) / 1000;
      const lines = stdout.split("\n");
      const successes = lines.filter((line) => line.includes("[SUCCESS]")).length;
      const failure = lines.find((line) => line.includes("[FAILURE]"));
      if (failure !== undefined) reasons.add(failure.replace(/^\[\d+\] [\d:]+ /, "").slice(0, 160));
      resolve({ rate: successes / seconds, failures: hostCount - successes, retries: 0 });
    });
  });
}

export async function fanOut(context: Context): Promise<void> {
  const { environment: server, options } = context;
  const hosts = server.aliases.slice(0, options.quick ? 50 : server.aliases.length);
  const pssh = await findPssh();
  const hostsFile = join(server.localDir, "pssh-hosts");
  await writeFile(hostsFile, `${hosts.join("\n")}\n`);
  if (pssh === undefined) context.log(`  no pssh (${PSSH_PROGRAMS.join(" or ")}) on PATH: its row is left out (Debian: apt-get install pssh)`);
  const rounds = options.quick ? 1 : 2;
  const outcomes = new Map<string, Outcome[]>();
  const reasons = new Map<string, Set<string>>();
  const reasonsOf = (tool: string) => reasons.get(tool) ?? reasons.set(tool, new Set()).get(tool)!;
  const add = (tool: string, outcome: Outcome) => outcomes.set(tool, [...(outcomes.get(tool) ?? []), outcome]);

  for (let round = 0; round < rounds; round++) {
    context.log(`  round ${round + 1}/${rounds}`);
    for (const name of ["ssh2", "openssh"] as TransportName[]) {
      const tool = `tunnel executor (${name})`;
      // A fresh pool each round: every host needs a new connection. The executor's maxConcurrent is the fan-out width.
      const stack = makeStack(name, server, { sshConfig: true, maxConcurrent: CONCURRENCY });
      try {
        const startedAt = performance.now();
        const results = await Promise.allSettled(hosts.map((host) => stack.executor.runCommand({ host, cmd: "true" })));
        const seconds = (performance.now() - startedAt) / 1000;
        let failures = 0;
        let retries = 0;
        for (const result of results) {
          if (result.status === "fulfilled" && result.value.exitCode === 0) {
            retries += result.value.attempts - 1;
            continue;
          }
          failures++;
          reasonsOf(tool).add(
            result.status === "rejected" ? describe(result.reason) : `exit ${result.value.exitCode}: ${result.value.stderr.trim().slice(0, 120)}`,
          );
        }
        add(tool, { rate: (hosts.length - failures) / seconds, failures, retries });
      } finally {
        await stack.close();
      }
    }
    const closing: Promise<void>[] = [];
    add(
      "raw ssh2 (noDelay)",
      await workers(hosts, reasonsOf("raw ssh2 (noDelay)"), async () => {
        // Raw ssh2 reads no ssh_config: it connects to the aliases' HostName directly.
        const client: Client = await rawConnect(server, true);
        try {
          const code = await rawExec(client, "true");
          if (code !== 0) throw new Error(`exit ${code}`);
        } finally {
          closing.push(rawEnd(client));
        }
      }),
    );
    await Promise.all(closing);
    add(
      "fresh ssh (32 processes)",
      await workers(hosts, reasonsOf("fresh ssh (32 processes)"), async (host) => {
        const outcome = await run("ssh", [...sshOptions(server, server.sshConfigPath), "-T", host, "true"]);
        if (outcome.code !== 0) throw new Error(`ssh exited ${outcome.code}: ${outcome.stderr.trim().slice(0, 160)}`);
      }),
    );
    if (pssh !== undefined) add(PSSH, await runPssh(pssh, hostsFile, hosts.length, sshOptions(server, server.sshConfigPath), reasonsOf(PSSH)));
  }
  for (const [tool, values] of outcomes) {
    const retries = values.reduce((sum, value) => sum + value.retries, 0);
    const why = [...(reasons.get(tool) ?? [])].slice(0, 2);
    const notes = [...(retries > 0 ? [`${retries} retried attempt(s)`] : []), ...why];
    context.record({
      section: SECTION,
      case: `${hosts.length} hosts`,
      tool,
      unit: "hosts/s",
      samples: values.map((value) => value.rate),
      failures: values.reduce((sum, value) => sum + value.failures, 0),
      // hosts/s: a ratio above 1 is faster than the baseline.
      against:
        tool === "raw ssh2 (noDelay)" ? [] : tool.startsWith("tunnel executor") && pssh !== undefined ? ["raw ssh2 (noDelay)", PSSH] : ["raw ssh2 (noDelay)"],
      ...(notes.length > 0 ? { note: notes.join("; ") } : {}),
    });
  }
}
