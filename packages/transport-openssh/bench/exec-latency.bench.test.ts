/**
 * Figures for the README, printed (not asserted), each measured side by side in the same run, interleaved round by
 * round so that a busy machine slows every contender alike:
 * - exec latency of `true` through the transport (exact exit status, and `exactExitStatus: false`) against a raw
 *   `ssh -S <socket> … true` on the same master, spawned the same way (async) and with spawnSync;
 * - 256 MiB upload and download through the transport against `scp` and `sftp -b` through the same master, and a
 *   plain `scp` with its own connection; the process's peak RSS growth during the transport's transfers;
 * - the master's RSS.
 * Run: npx vitest run --config bench/vitest.config.ts
 * Knobs: TUNNEL_BENCH_ROUNDS (exec rounds, default 40), TUNNEL_BENCH_MIB (file size, default 256),
 * TUNNEL_BENCH_TRANSFER_ROUNDS (default 3).
 */
import { execFile, spawn, spawnSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { createReadStream, readFileSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { expect, it } from "vitest";
import { runProcess } from "@tunnel-sh/core";
import { sshClientArgs, startSshd } from "@tunnel-sh/testing";
import { OpenSshTransport, type OpenSshConnection } from "../src/index.js";

const run = promisify(execFile);
const number = (name: string, fallback: number) => Number(process.env[name] ?? fallback);

interface Series {
  readonly name: string;
  readonly values: number[];
}

const sorted = (values: readonly number[]) => [...values].sort((a, b) => a - b);
const median = (values: readonly number[]) => sorted(values)[Math.floor(values.length / 2)]!;

async function sha256(path: string): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest("hex");
}

/** Run every contender once per round, in turn; returns each one's series. */
async function interleave(rounds: number, contenders: Record<string, () => Promise<number>>): Promise<Series[]> {
  const series = Object.keys(contenders).map((name) => ({ name, values: [] as number[] }));
  for (let round = 0; round < rounds; round++) {
    for (const entry of series) entry.values.push(await contenders[entry.name]!());
  }
  return series;
}

const timed = (task: () => Promise<unknown>) => async () => {
  const started = performance.now();
  await task();
  return performance.now() - started;
};

it("measures exec latency, transfer throughput and memory side by side with raw ssh -S, scp and sftp", async () => {
  const sshd = await startSshd();
  const options = { identityFile: sshd.clientKeyPath, knownHostsFile: sshd.knownHostsPath, configFile: "/dev/null" };
  const target = { host: sshd.host, port: sshd.port, user: sshd.users.plain.name };
  const exact = (await new OpenSshTransport(options).connect(target)) as OpenSshConnection;
  const shellWaiter = (await new OpenSshTransport({ ...options, exactExitStatus: false }).connect(target)) as OpenSshConnection;
  const dir = await mkdtemp(join(tmpdir(), "tunnel-openssh-bench-"));
  const remote = `/tmp/tunnel-openssh-bench-${randomBytes(4).toString("hex")}`;
  try {
    // Clients on the connection's master only (never a connection of their own), with the flags the transport gives its own.
    const onMaster = ["-o", `ControlPath=${exact.controlPath}`, "-o", "ControlMaster=no", "-o", "ProxyCommand=/bin/false", "-F", "/dev/null"];
    // Exec: a raw mux client.
    const raw = [...onMaster, "-p", String(sshd.port), "-l", target.user, "-T", "--", sshd.host, "true"];
    const rawAsync = () =>
      new Promise<void>((resolve) => {
        const child = spawn("ssh", raw, { stdio: ["pipe", "pipe", "pipe"] });
        child.stdout.resume();
        child.stderr.resume();
        child.stdin.end();
        child.on("close", () => resolve());
      });
    const execs = await interleave(number("TUNNEL_BENCH_ROUNDS", 40), {
      "raw ssh -S (spawn)": timed(rawAsync),
      "raw ssh -S (spawnSync)": timed(async () => spawnSync("ssh", raw)),
      "tunnel, exact status (perl)": timed(() => runProcess(exact, { command: "true" })),
      "tunnel, exactExitStatus: false": timed(() => runProcess(shellWaiter, { command: "true" })),
    });
    const base = median(execs[0]!.values);
    const baseSync = median(execs[1]!.values);
    console.log("\n| exec `true` | median ms | min | max | × raw (spawn) | × raw (spawnSync) |\n|---|---|---|---|---|---|");
    for (const { name, values } of execs) {
      const order = sorted(values);
      console.log(
        `| ${name} | ${median(values).toFixed(1)} | ${order[0]!.toFixed(1)} | ${order.at(-1)!.toFixed(1)} | ${(median(values) / base).toFixed(2)} | ${(median(values) / baseSync).toFixed(2)} |`,
      );
    }

    // Transfers.
    const mib = number("TUNNEL_BENCH_MIB", 256);
    const payload = join(dir, "payload");
    await writeFile(payload, randomBytes(mib * 1024 * 1024));
    const user = `${target.user}@${sshd.host}`;
    const viaMaster = [...onMaster, "-P", String(sshd.port)];
    const direct = [...sshClientArgs(sshd), "-P", String(sshd.port)];
    const sftp = (batch: string) =>
      new Promise<void>((resolve, reject) => {
        const child = spawn("sftp", ["-q", "-b", "-", ...viaMaster, user], { stdio: ["pipe", "ignore", "inherit"] });
        child.stdin.end(batch);
        child.on("close", (code) => (code === 0 ? resolve() : reject(new Error(`sftp exited ${code}`))));
      });
    const startRss = process.memoryUsage().rss;
    let peakRss = startRss;
    const sampler = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage().rss)), 20);
    const rate = (task: () => Promise<unknown>) => async () => mib / ((await timed(task)()) / 1000);
    const transfers = await interleave(number("TUNNEL_BENCH_TRANSFER_ROUNDS", 3), {
      "tunnel upload": rate(() => exact.upload({ localPath: payload, remotePath: `${remote}.t` })),
      "scp upload via the master": rate(() => run("scp", ["-q", ...viaMaster, payload, `${user}:${remote}.s`])),
      "sftp -b put via the master": rate(() => sftp(`put ${payload} ${remote}.f\n`)),
      "plain scp upload (own connection)": rate(() => run("scp", ["-q", ...direct, payload, `${user}:${remote}.p`])),
      "tunnel download": rate(() => exact.download({ remotePath: `${remote}.t`, localPath: join(dir, "back") })),
      "scp download via the master": rate(() => run("scp", ["-q", ...viaMaster, `${user}:${remote}.s`, join(dir, "back.s")])),
      "sftp -b get via the master": rate(() => sftp(`get ${remote}.f ${join(dir, "back.f")}\n`)),
      "plain scp download (own connection)": rate(() => run("scp", ["-q", ...direct, `${user}:${remote}.p`, join(dir, "back.p")])),
    });
    clearInterval(sampler);
    console.log(`\n| ${mib} MiB | median MiB/s | all rounds |\n|---|---|---|`);
    for (const { name, values } of transfers) console.log(`| ${name} | ${median(values).toFixed(0)} | ${values.map((value) => value.toFixed(0)).join(", ")} |`);

    const masterRss = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${exact.masterPid}/status`, "utf8"))?.[1]);
    console.log(`\nmaster RSS ${masterRss} KiB; this process's peak RSS growth during the transfers ${((peakRss - startRss) / 1048576).toFixed(1)} MiB`);
    expect(await sha256(join(dir, "back"))).toBe(await sha256(payload));
  } finally {
    await runProcess(exact, { command: `rm -f ${remote}.t ${remote}.s ${remote}.f ${remote}.p` }).catch(() => undefined);
    await exact.close();
    await shellWaiter.close();
    await rm(dir, { recursive: true, force: true });
    await sshd.stop();
  }
}, 1_800_000);
