/**
 * Figures for the README, printed (not asserted): exec latency through the transport against a raw `ssh -S`
 * through the same master, the master's RSS, and transfer throughput against scp through the same master.
 * Run: npx vitest run --dir bench
 */
import { execFileSync, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect, it } from "vitest";
import { runProcess } from "@tunnel/core";
import { startSshd } from "@tunnel/testing";
import { OpenSshTransport, type OpenSshConnection } from "../src/index.js";

it("measures exec latency, master RSS and transfer throughput", async () => {
  const sshd = await startSshd();
  const transport = new OpenSshTransport({ identityFile: sshd.clientKeyPath, knownHostsFile: sshd.knownHostsPath, configFile: "/dev/null" });
  const connection = (await transport.connect({ host: sshd.host, port: sshd.port, user: sshd.users.plain.name })) as OpenSshConnection;
  const dir = await mkdtemp(join(tmpdir(), "tunnel-openssh-bench-"));
  try {
    const rounds = 30;
    const median = (values: number[]) => values.sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
    const raw: number[] = [];
    const wrapped: number[] = [];
    for (let round = 0; round < rounds; round++) {
      let started = performance.now();
      spawnSync("ssh", ["-S", connection.controlPath, "-o", "ControlMaster=no", "-T", "x", "true"]);
      raw.push(performance.now() - started);
      started = performance.now();
      await runProcess(connection, { command: "true" });
      wrapped.push(performance.now() - started);
    }
    const rss = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${connection.masterPid}/status`, "utf8"))?.[1]);
    const size = 256 * 1024 * 1024;
    await writeFile(join(dir, "payload"), randomBytes(size));
    const remote = `/tmp/tunnel-openssh-bench-${randomBytes(4).toString("hex")}`;
    let started = performance.now();
    await connection.upload({ localPath: join(dir, "payload"), remotePath: remote });
    const up = size / 1048576 / ((performance.now() - started) / 1000);
    started = performance.now();
    await connection.download({ remotePath: remote, localPath: join(dir, "back") });
    const down = size / 1048576 / ((performance.now() - started) / 1000);
    const scpTarget = `${sshd.users.plain.name}@${sshd.host}:${remote}.scp`;
    started = performance.now();
    execFileSync("scp", ["-q", "-o", `ControlPath=${connection.controlPath}`, "-o", "ControlMaster=no", "-P", String(sshd.port), join(dir, "payload"), scpTarget]);
    const scpUp = size / 1048576 / ((performance.now() - started) / 1000);
    started = performance.now();
    execFileSync("scp", ["-q", "-o", `ControlPath=${connection.controlPath}`, "-o", "ControlMaster=no", "-P", String(sshd.port), scpTarget, join(dir, "back.scp")]);
    const scpDown = size / 1048576 / ((performance.now() - started) / 1000);
    await runProcess(connection, { command: `rm -f ${remote} ${remote}.scp` });
    console.log(
      JSON.stringify({
        rawSshSMedianMs: +median(raw).toFixed(1),
        transportExecMedianMs: +median(wrapped).toFixed(1),
        ratio: +(median(wrapped) / median(raw)).toFixed(2),
        masterRssKiB: rss,
        uploadMiBps: Math.round(up),
        downloadMiBps: Math.round(down),
        scpUpMiBps: Math.round(scpUp),
        scpDownMiBps: Math.round(scpDown),
      }),
    );
    expect(rss).toBeGreaterThan(0);
  } finally {
    await connection.close();
    await rm(dir, { recursive: true, force: true });
    await sshd.stop();
  }
}, 300_000);
