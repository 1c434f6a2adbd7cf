/**
 * `pnpm bench`: tunnel side by side with raw ssh2, node-ssh and the OpenSSH binaries against a throwaway sshd.
 * Prints a markdown table and writes bench/results/latest.json.
 *
 *   node dist/main.js [--quick] [--only exec,throughput,connect,fan-out,transfer,memory,cli] [--publish]
 *
 * `--publish` also writes the run into bench/RESULTS.md and the README's goals table (`publish.ts`).
 */
import { spawnSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { cliStartup } from "./cases/cli-startup.js";
import { connectRate } from "./cases/connect-rate.js";
import { execLatency } from "./cases/exec-latency.js";
import { fanOut } from "./cases/fan-out.js";
import { fleet, runQueueWorker } from "./cases/fleet.js";
import type { QueueWorkerTask } from "./cases/fleet.js";
import { memory, runChild } from "./cases/memory.js";
import { throughput } from "./cases/throughput.js";
import { transfers } from "./cases/transfers.js";
import type { BenchOptions, Context } from "./context.js";
import { startEnvironment } from "./environment.js";
import { goalsMarkdown } from "./goals.js";
import { publish } from "./publish.js";
import { markdown, type RunInfo } from "./report.js";
import { computeRatios, makeRow, type Row } from "./stats.js";

const SECTIONS: ReadonlyArray<readonly [string, (context: Context) => Promise<void>]> = [
  ["exec", execLatency],
  ["throughput", throughput],
  ["connect", connectRate],
  ["fan-out", fanOut],
  ["fleet", fleet],
  ["transfer", transfers],
  ["memory", memory],
  ["cli", cliStartup],
];

function parseArguments(argv: readonly string[]): BenchOptions & { child?: string; queueWorker?: string; out?: string; publish: boolean } {
  let quick = false;
  let publishRun = false;
  let only: string[] = [];
  let child: string | undefined;
  let queueWorker: string | undefined;
  let out: string | undefined;
  for (let index = 0; index < argv.length; index++) {
    const argument = argv[index] as string;
    if (argument === "--quick") quick = true;
    else if (argument === "--only") only = (argv[++index] ?? "").split(",").filter(Boolean);
    else if (argument.startsWith("--only=")) only = argument.slice("--only=".length).split(",").filter(Boolean);
    else if (argument === "--child") child = argv[++index];
    else if (argument === "--queue-worker") queueWorker = "stdin";
    else if (argument === "--out") out = argv[++index];
    else if (argument === "--publish") publishRun = true;
    else if (argument === "--") continue;
    else throw new Error(`unknown argument ${argument} (use --quick, --only a,b, --out file.json, --publish)`);
  }
  const known = new Set(SECTIONS.map(([name]) => name));
  for (const name of only) if (!known.has(name)) throw new Error(`unknown section ${name}; sections: ${[...known].join(", ")}`);
  return {
    quick,
    only,
    publish: publishRun,
    ...(child !== undefined ? { child } : {}),
    ...(queueWorker !== undefined ? { queueWorker } : {}),
    ...(out !== undefined ? { out } : {}),
  };
}

async function main(): Promise<void> {
  const options = parseArguments(process.argv.slice(2));
  if (options.queueWorker !== undefined) {
    // The task arrives on stdin, so nothing of it shows in this process's argv.
    const chunks: Buffer[] = [];
    for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
    await runQueueWorker(JSON.parse(Buffer.concat(chunks).toString("utf8")) as QueueWorkerTask);
    return;
  }
  if (options.child !== undefined) {
    const report = await runChild(JSON.parse(options.child) as Parameters<typeof runChild>[0]);
    process.stdout.write(`${JSON.stringify(report)}\n`);
    return;
  }
  const startedAt = performance.now();
  const loadBefore = loadavg();
  const environment = await startEnvironment();
  const rows: Row[] = [];
  const log = (message: string) => process.stderr.write(`${message}\n`);
  const context: Context = { environment, options, record: (row) => rows.push(makeRow(row)), log };
  try {
    for (const [name, section] of SECTIONS) {
      if (options.only.length > 0 && !options.only.includes(name)) continue;
      const sectionStart = performance.now();
      log(`${name} (load ${loadavg()[0]?.toFixed(2)})`);
      await section(context);
      log(`${name} done in ${((performance.now() - sectionStart) / 1000).toFixed(1)} s`);
    }
  } finally {
    await environment.close();
  }
  computeRatios(rows);
  const info: RunInfo = {
    date: new Date().toISOString(),
    quick: options.quick,
    node: process.version,
    openssh: spawnSync("ssh", ["-V"], { encoding: "utf8" }).stderr.trim().split(",")[0] ?? "",
    cpus: cpus().length,
    loadBefore,
    loadAfter: loadavg(),
    durationS: (performance.now() - startedAt) / 1000,
    user: environment.user,
    loginShell: environment.shell.loginShell,
    profileFiles: environment.shell.profileFiles,
    maxSessions: environment.maxSessions,
  };
  const table = markdown(info, rows) + goalsMarkdown(rows);
  process.stdout.write(`${table}\n`);
  const out = options.out ?? join(dirname(fileURLToPath(import.meta.url)), "..", "results", "latest.json");
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, `${JSON.stringify({ info, rows, markdown: table }, null, 2)}\n`);
  log(`wrote ${out}`);
  if (options.publish) log(`published into ${publish({ info, rows, markdown: table }).join(" and ")}`);
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  },
);
