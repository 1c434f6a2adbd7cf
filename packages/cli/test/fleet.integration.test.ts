/**
 * `tunnel` fleets against a real sshd, as processes: `--serial` and `--max-fail` in this process, and the same
 * commands through the queue (`--redis`) with two `tunnel worker` processes on a real redis-server: the same output,
 * JSON and exit codes.
 */
import { randomBytes } from "node:crypto";
import { chmod, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { redisServerSupport, remoteProcesses, sshdSupport, startRedisServer, startSshd, type RedisServer, type Sshd, freePort } from "@tunnel-sh/testing";
import { ExitCode, type HostOutcome, type JsonReport } from "../src/index.js";
import { BIN, assertFreshBuild, eventually, start, tunnel, type Running } from "./process.js";

const support = sshdSupport();
const redisSupport = redisServerSupport();

describe("sshd and redis-server availability", () => {
  it("has a runnable sshd and redis-server (in CI both are required)", () => {
    expect((support.available && redisSupport.available) || !process.env["CI"]).toBe(true);
  });
});

/** What two runs must agree on: everything but timings. */
function comparable(report: JsonReport): unknown {
  return {
    ...report,
    hosts: report.hosts.map((host: HostOutcome) => {
      const { durationMs: _duration, ...rest } = host;
      return { ...rest, ...(rest.error ? { error: { ...rest.error, message: rest.error.message.replace(/\d+ ms/g, "N ms") } } : {}) };
    }),
  };
}

if (support.available && redisSupport.available) {
  describe("tunnel fleets against a real sshd", () => {
    let sshd: Sshd;
    let redis: RedisServer;
    let dir: string;
    let dead: string;
    let access: string[];
    const workers: Running[] = [];
    const queue = `cli-${randomBytes(4).toString("hex")}`;

    beforeAll(async () => {
      assertFreshBuild();
      sshd = await startSshd();
      redis = await startRedisServer();
      dir = await mkdtemp(join(tmpdir(), "tunnel-cli-fleet-"));
      await chmod(dir, 0o755);
      const sshConfig = join(dir, "ssh_config");
      await writeFile(sshConfig, [`Host web-* app-*`, `  HostName ${sshd.host}`, `  Port ${sshd.port}`, `  User ${sshd.users.plain.name}`, ""].join("\n"));
      await writeFile(
        join(dir, "known_hosts"),
        ["web-1", "web-2", "web-3", "web-4"].map((name) => `[${name}]:${sshd.port} ${sshd.hostPublicKey}\n`).join("") + `${sshd.knownHostsLine}\n`,
      );
      dead = `127.0.0.1:${await freePort()}`;
      access = ["-F", sshConfig, "-I", sshd.clientKeyPath, "--known-hosts", join(dir, "known_hosts")];
      for (let index = 0; index < 2; index++) {
        const worker = start(
          process.execPath,
          [BIN, "worker", "--redis", redis.url, "--queue", queue, "--retries", "0", "--secret-env", "pwsudo=WORKER_SUDO_PASSWORD", ...access],
          {
            env: { ...process.env, WORKER_SUDO_PASSWORD: sshd.users.pwsudo.password },
          },
        );
        workers.push(worker);
        expect(await eventually(async () => /taking jobs from queue/.test(worker.stderr()), 30_000)).toBe(true);
      }
    });

    afterAll(async () => {
      for (const worker of workers) worker.child.kill("SIGTERM");
      await Promise.all(workers.map((worker) => worker.finished));
      await redis?.stop();
      await sshd?.stop();
      if (dir) await rm(dir, { recursive: true, force: true });
    });

    it("--serial runs a canary first; --max-fail 0 leaves the rest unstarted once it fails, and exits 3", async () => {
      const result = await tunnel([
        "run",
        ...access,
        "-H",
        `${dead},web-1,web-2,web-3`,
        "--retries",
        "0",
        "--serial",
        "1,100%",
        "--max-fail",
        "0",
        "--json",
        "--",
        "echo hi",
      ]);
      expect(result.code).toBe(ExitCode.HOST_FAILED);
      const report = JSON.parse(result.stdout) as JsonReport;
      expect(report.hosts.map((host) => [host.name, host.error?.code])).toEqual([
        [dead, "CONNECT"],
        ["web-1", "SKIPPED"],
        ["web-2", "SKIPPED"],
        ["web-3", "SKIPPED"],
      ]);
      const summary = await tunnel(["run", ...access, "-H", `${dead},web-1,web-2`, "--retries", "0", "--serial", "1", "--max-fail", "0", "--", "echo hi"]);
      expect(summary.stderr).toContain("3 hosts: 0 ok, 1 failed, 2 not started");
    });

    it("--max-fail tolerates that many failures", async () => {
      const result = await tunnel(["run", ...access, "-H", `${dead},web-1,web-2`, "--retries", "0", "-c", "1", "--max-fail", "1", "--json", "--", "echo hi"]);
      expect(result.code).toBe(ExitCode.HOST_FAILED);
      const report = JSON.parse(result.stdout) as JsonReport;
      expect(report.hosts.map((host) => host.error?.code ?? host.exitCode)).toEqual(["CONNECT", 0, 0]);
    });

    it("run --redis prints the same JSON and exits with the same status as a local run", async () => {
      const args = ["-H", "web-1,web-2", "--json", "--", "echo out; echo err >&2; exit 4"];
      const local = await tunnel(["run", ...access, ...args]);
      const queued = await tunnel(["run", "--redis", redis.url, "--queue", queue, ...args]);
      expect(queued.code).toBe(ExitCode.COMMAND_FAILED);
      expect(queued.code).toBe(local.code);
      expect(comparable(JSON.parse(queued.stdout) as JsonReport)).toEqual(comparable(JSON.parse(local.stdout) as JsonReport));
      const workerLines = workers.map((worker) => worker.stderr()).join("");
      expect(workerLines).toMatch(/tunnel worker: job \S+ \(command on @web-1:\) finished failed/);
    });

    it("run --redis streams each host's prefixed lines and reports an unreachable host with exit 3", async () => {
      const queued = await tunnel(["run", "--redis", redis.url, "--queue", queue, "-H", `web-1,web-2,${dead}`, "--", 'echo "hello from $USER"']);
      expect(queued.code).toBe(ExitCode.HOST_FAILED);
      expect(queued.stdout).toMatch(new RegExp(`^web-1 +\\| hello from ${sshd.users.plain.name}$`, "m"));
      expect(queued.stdout).toMatch(new RegExp(`^web-2 +\\| hello from ${sshd.users.plain.name}$`, "m"));
      expect(queued.stderr).toMatch(new RegExp(`^${dead}\\s+-\\s+\\S+\\s+1\\s+CONNECT: .*ECONNREFUSED`, "m"));
    });

    it("script and put through the queue; sudo through a secret the workers hold", async () => {
      const scriptFile = join(dir, "hello.sh");
      await writeFile(scriptFile, '#!/bin/sh\necho "script args: $*"\n');
      const script = await tunnel(["script", "--redis", redis.url, "--queue", queue, "-H", "web-1", "--json", scriptFile, "--", "a", "b c"]);
      expect(script.code).toBe(ExitCode.OK);
      expect((JSON.parse(script.stdout) as JsonReport).hosts[0]?.stdout).toBe("script args: a b c\n");

      const local = join(dir, "payload.txt");
      await writeFile(local, "through the queue\n");
      const remote = `/tmp/tunnel-cli-put-${randomBytes(4).toString("hex")}-{host}.txt`;
      try {
        const put = await tunnel(["put", "--redis", redis.url, "--queue", queue, "-H", "web-1,web-2", "--verify", local, remote]);
        expect(put.code, put.stderr).toBe(ExitCode.OK);
        for (const name of ["web-1", "web-2"]) expect(await readFile(remote.replace("{host}", name), "utf8")).toBe("through the queue\n");
        expect(put.stderr).toMatch(/web-1 +\| uploaded 18 B to .* sha256 verified/);
      } finally {
        for (const name of ["web-1", "web-2"]) await rm(remote.replace("{host}", name), { force: true });
      }

      const sudo = await tunnel([
        "run",
        "--redis",
        redis.url,
        "--queue",
        queue,
        "-H",
        `${sshd.users.pwsudo.name}@web-1`,
        "--sudo-secret",
        "pwsudo",
        "--json",
        "--",
        "id -un",
      ]);
      expect(sudo.code, sudo.stdout).toBe(ExitCode.OK);
      expect((JSON.parse(sudo.stdout) as JsonReport).hosts[0]?.stdout).toBe("root\n");
      expect(sudo.stdout + sudo.stderr).not.toContain(sshd.users.pwsudo.password);
    });

    it("Ctrl-C on run --redis cancels the jobs on their workers, stops the remote processes and exits 130", async () => {
      const marker = `300.${randomBytes(3).readUIntBE(0, 3)}`;
      const sleepers = async () => (await remoteProcesses(sshd.users.plain.name)).filter((entry) => entry.args === `sleep ${marker}`).length;
      const running = start(process.execPath, [BIN, "run", "--redis", redis.url, "--queue", queue, "-H", "web-1,web-2", "--", `echo started; sleep ${marker}`]);
      try {
        await running.waitFor(/web-1\s+\| started[\s\S]*web-2\s+\| started|web-2\s+\| started[\s\S]*web-1\s+\| started/, 30_000);
        expect(await eventually(async () => (await sleepers()) === 2, 10_000)).toBe(true);
        running.child.kill("SIGINT");
        const result = await running.finished;
        expect(result.code).toBe(ExitCode.INTERRUPTED);
        expect(result.stderr).toMatch(/web-1\s+-\s+\S+\s+1\s+ABORTED/);
        expect(await eventually(async () => (await sleepers()) === 0, 10_000)).toBe(true);
      } finally {
        running.child.kill("SIGKILL");
      }
    });

    it("refuses a sudo password with --redis, and queue options without it, before anything runs", async () => {
      const password = await tunnel(["run", "--redis", redis.url, "-H", "web-1", "--sudo-pass-env", "HOME", "--", "id"]);
      expect(password.code).toBe(ExitCode.USAGE);
      expect(password.stderr).toContain("--sudo-secret");
      const local = await tunnel(["run", "-H", "web-1", "--sudo-secret", "x", "--", "id"]);
      expect(local.code).toBe(ExitCode.USAGE);
      const identity = await tunnel(["run", "--redis", redis.url, "-I", "/x", "-H", "web-1", "--", "id"]);
      expect(identity.code).toBe(ExitCode.USAGE);
      const serial = await tunnel(["run", "-H", "web-1", "--serial", "0", "--", "id"]);
      expect(serial.code).toBe(ExitCode.USAGE);
      const budget = await tunnel(["run", "-H", "web-1", "--max-fail", "lots", "--", "id"]);
      expect(budget.code).toBe(ExitCode.USAGE);
    });
  });
}
