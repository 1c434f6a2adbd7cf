/**
 * The Fleet on a real sshd, over both transports: several ssh_config host aliases that all reach one sshd stand in
 * for a fleet. Batches, the failure budget, transfers, the breaker, and a fleet-wide abort that leaves no remote
 * process behind.
 */
import { randomBytes } from "node:crypto";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CircuitOpenError, DefaultExecutorConfig, Executor, Fleet } from "@tunnel-sh/core";
import type { FleetEvent, FleetHost, Transport } from "@tunnel-sh/core";
import { ConnectionPool, DefaultPoolConfig } from "@tunnel-sh/pool";
import { remoteProcesses, startSshd } from "@tunnel-sh/testing";
import type { Sshd } from "@tunnel-sh/testing";
import { OpenSshTransport } from "@tunnel-sh/transport-openssh";
import { Ssh2Transport } from "@tunnel-sh/transport-ssh2";
import { TRANSPORTS } from "./support/transports.js";
import type { TransportName } from "./support/transports.js";
import { eventually } from "./support/fault-processes.js";

const ALIASES = Array.from({ length: 6 }, (_, index) => `fleet-${index + 1}`);

describe.each(TRANSPORTS)("Fleet over %s on host aliases of a real sshd", (transportName: TransportName) => {
  let sshd: Sshd;
  let folder: string;
  let closedPort: number;
  let pools: ConnectionPool[] = [];

  const executorFor = (changes: Parameters<ReturnType<typeof DefaultExecutorConfig>["with"]>[0] = {}) => {
    const configFile = join(folder, "ssh_config");
    const knownHosts = join(folder, "known_hosts");
    const transport: Transport =
      transportName === "ssh2"
        ? new Ssh2Transport({ identityFile: sshd.clientKeyPath, knownHostsFile: knownHosts, configFile, agent: false })
        : new OpenSshTransport({ identityFile: sshd.clientKeyPath, knownHostsFile: knownHosts, configFile });
    const pool = new ConnectionPool(transport, DefaultPoolConfig());
    pools.push(pool);
    return new Executor(pool, DefaultExecutorConfig().with({ retryBackoff: 50, maxRetryDelay: 200, retryJitter: 0, ...changes }));
  };
  const hosts = (): FleetHost[] => ALIASES.map((alias) => ({ host: alias, name: alias }));

  beforeAll(async () => {
    sshd = await startSshd();
    folder = await mkdtemp(join(tmpdir(), "tunnel-fleet-"));
    // A port nothing listens on: bind one, note it, close it.
    const { createServer } = await import("node:net");
    closedPort = await new Promise<number>((resolve) => {
      const server = createServer();
      server.listen(0, "127.0.0.1", () => {
        const address = server.address();
        server.close(() => resolve(typeof address === "object" && address ? address.port : 1));
      });
    });
    const user = sshd.users.plain.name;
    await writeFile(
      join(folder, "ssh_config"),
      `Host fleet-down\n  HostName 127.0.0.1\n  Port ${closedPort}\n  User ${user}\n\nHost fleet-*\n  HostName 127.0.0.1\n  Port ${sshd.port}\n  User ${user}\n`,
    );
    await writeFile(
      join(folder, "known_hosts"),
      ALIASES.map((alias) => `[${alias}]:${sshd.port} ${sshd.hostPublicKey}\n`).join("") + `${sshd.knownHostsLine}\n`,
    );
  });
  afterAll(async () => {
    await Promise.all(pools.map((pool) => pool.close()));
    pools = [];
    await sshd?.stop();
    if (folder) await rm(folder, { recursive: true, force: true });
  });

  it("runs a command on every alias in rolling batches, with each host's output as live events", async () => {
    const events: FleetEvent[] = [];
    const report = await new Fleet(executorFor()).run({
      hosts: hosts(),
      operation: (host) => ({ type: "command", cmd: 'echo "hello from $ALIAS as $(id -un)"', env: { ALIAS: host.name ?? host.host } }),
      concurrency: 4,
      serial: [1, "50%"],
      onEvent: (event) => events.push(event),
    });
    expect(report).toMatchObject({ ok: 6, failed: 0, skipped: 0, batches: [1, 3, 2] });
    for (const host of report.hosts) expect(host.result?.stdout).toBe(`hello from ${host.name} as ${sshd.users.plain.name}\n`);
    const output = events.filter((event) => event.type === "output").map((event) => `${event.host}:${event.text}`);
    expect(output.sort()).toEqual(ALIASES.map((alias) => `${alias}:hello from ${alias} as ${sshd.users.plain.name}\n`).sort());
    expect(events.filter((event) => event.type === "batch").map((event) => event.hosts)).toEqual([
      ["fleet-1"],
      ["fleet-2", "fleet-3", "fleet-4"],
      ["fleet-5", "fleet-6"],
    ]);
  });

  it("stops starting hosts once the failure budget is spent", async () => {
    const report = await new Fleet(executorFor()).run({
      hosts: hosts(),
      operation: (host) => ({ type: "script", content: `#!/bin/sh\nexit ${host.name === "fleet-2" || host.name === "fleet-3" ? 7 : 0}\n` }),
      concurrency: 1,
      maxFailures: 1,
    });
    expect(report.hosts.map((host) => host.status)).toEqual(["ok", "failed", "failed", "skipped", "skipped", "skipped"]);
    expect(report.hosts[1]?.result?.exitCode).toBe(7);
    expect(report.budgetSpent).toBe(true);
  });

  it("uploads a file to every alias", async () => {
    const source = join(folder, "payload.txt");
    await writeFile(source, "fleet payload\n");
    const remoteDir = await mkdtemp(join(tmpdir(), "tunnel-fleet-remote-"));
    const { execFileSync } = await import("node:child_process");
    execFileSync("chown", [sshd.users.plain.name, remoteDir]);
    try {
      const report = await new Fleet(executorFor()).run({
        hosts: hosts(),
        operation: (host) => ({ type: "transfer", direction: "upload", source, destination: join(remoteDir, `${host.name}.txt`), verify: "sha256" }),
      });
      expect(report.ok).toBe(6);
      for (const alias of ALIASES) expect(await readFile(join(remoteDir, `${alias}.txt`), "utf8")).toBe("fleet payload\n");
      expect(report.hosts.every((host) => host.transfer?.verified === true && host.transfer.bytes === 14)).toBe(true);
    } finally {
      await rm(remoteDir, { recursive: true, force: true });
    }
  });

  it("one abort cancels the whole fleet and every remote process is gone", async () => {
    const marker = `fleet-abort-${randomBytes(6).toString("hex")}`;
    const controller = new AbortController();
    const run = new Fleet(executorFor()).run({
      hosts: hosts(),
      operation: { type: "command", cmd: `echo ready; sleep 600; echo ${marker}` },
      concurrency: 3,
      signal: controller.signal,
    });
    const withMarker = async () => (await remoteProcesses(sshd.users.plain.name)).filter((process) => process.args.includes(marker)).length;
    let ready = 0;
    let runningBeforeAbort = 0;
    for await (const event of run) {
      if (event.type === "output" && event.text.includes("ready") && ++ready === 3) {
        runningBeforeAbort = await withMarker();
        controller.abort();
      }
    }
    const report = await run;
    expect(report).toMatchObject({ aborted: true, cancelled: 3, skipped: 3, ok: 0, failed: 0 });
    expect(report.hosts.filter((host) => host.status === "cancelled").every((host) => host.error?.code === "ABORTED")).toBe(true);
    expect(runningBeforeAbort).toBeGreaterThanOrEqual(3);
    const gone = await eventually(async () => (await withMarker()) === 0, 10_000);
    expect(gone).toBe(true);
  });

  it("respects each host's breaker: an open breaker fails that host with CircuitOpenError, the rest run", async () => {
    const executor = executorFor({ maxRetries: 0, breaker: { failureThreshold: 1, cooldown: 60_000 } });
    const fleetHosts = [{ host: "fleet-down", name: "fleet-down" }, ...hosts().slice(0, 2)];
    const first = await new Fleet(executor).run({ hosts: fleetHosts, operation: { type: "command", cmd: "true" } });
    expect(first.hosts[0]?.status).toBe("failed");
    expect(first.hosts[0]?.error?.code).toMatch(/^(CONNECT|RETRIES_EXHAUSTED)$/);
    const second = await new Fleet(executor).run({ hosts: fleetHosts, operation: { type: "command", cmd: "true" } });
    expect(second.hosts[0]?.error).toBeInstanceOf(CircuitOpenError);
    expect(second.hosts.map((host) => host.status)).toEqual(["failed", "ok", "ok"]);
  });
});
