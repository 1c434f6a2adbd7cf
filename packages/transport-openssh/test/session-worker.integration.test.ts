/**
 * Session workers (`session-worker.ts`), against a real sshd: a connection's framed commands after its first run in
 * sessions that stay open and run one command after another, with every result the same as from a session opened
 * for the command — output, stdin, exit status, signals, aborts — and without holding a channel a transfer needs.
 */
import { createHash, randomBytes } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runProcess } from "@tunnel-sh/core";
import { remoteProcesses, sshdSupport, startSshd, type Sshd } from "@tunnel-sh/testing";
import { OpenSshTransport, type OpenSshConnection } from "../src/index.js";
import { countingSsh, localProcessesNaming, sleep, until } from "./session-support.js";

const support = sshdSupport();

describe("sshd availability", () => {
  it("has a runnable sshd (in CI this is required)", () => {
    expect(support.available || !process.env["CI"]).toBe(true);
  });
});

if (support.available) {
  describe("session workers", () => {
    let sshd: Sshd;
    let folder: string;
    let spawns: () => Promise<number>;
    let transport: OpenSshTransport;
    let target: { host: string; port: number; user: string };

    /** The host's perl workers of this test's user. */
    const hostWorkers = async () => (await remoteProcesses(target.user)).filter((entry) => /^perl -e /.test(entry.args) && entry.args.includes(":ready:perl"));

    beforeAll(async () => {
      sshd = await startSshd({ usePam: false });
      folder = await mkdtemp(join(tmpdir(), "tunnel-openssh-worker-"));
      // Every ssh the transport starts, logged before it runs.
      const counting = await countingSsh(folder);
      const sshPath = counting.sshPath;
      spawns = counting.spawns;
      target = { host: sshd.host, port: sshd.port, user: sshd.users.plain.name };
      transport = new OpenSshTransport({ identityFile: sshd.clientKeyPath, knownHostsFile: sshd.knownHostsPath, configFile: "/dev/null", sshPath });
    });

    afterAll(async () => {
      await sshd?.stop();
      if (folder) await rm(folder, { recursive: true, force: true });
    });

    it("runs command after command in one session, none starting an ssh of its own, with exact output, stdin and status", async () => {
      const connection = (await transport.connect(target)) as OpenSshConnection;
      try {
        await runProcess(connection, { command: "true" });
        // The second command starts the worker; every later one runs in it.
        const first = await runProcess(connection, { command: "echo $PPID" });
        const before = await spawns();
        const big = randomBytes(3 * 1024 * 1024);
        // Each command has a parent of its own (a waiter forked for it), as in a session of its own.
        const second = await runProcess(connection, { command: "echo $PPID" });
        expect(second.stdout).toMatch(/^\d+\n$/);
        expect(second.stdout).not.toBe(first.stdout);
        const cases = [
          { command: "cat; echo err >&2; exit 130", stdin: "in\n", expected: { exitCode: 130, signal: null, stdout: "in\n", stderr: "err\n" } },
          { command: "printf '%s' \"$1x\"; kill -INT $$", stdin: undefined, expected: { exitCode: null, signal: "SIGINT", stdout: "x", stderr: "" } },
          { command: "kill -KILL $$", stdin: undefined, expected: { exitCode: null, signal: "SIGKILL", stdout: "", stderr: "" } },
          { command: "exit 255", stdin: undefined, expected: { exitCode: 255, signal: null, stdout: "", stderr: "" } },
          // Output that looks like the worker's own frames and reports passes through as the command's.
          {
            command: "printf 'o5\\nabc\\no0\\n'; printf 'o0\\n' >&2",
            stdin: undefined,
            expected: { exitCode: 0, signal: null, stdout: "o5\nabc\no0\n", stderr: "o0\n" },
          },
          { command: "printf partial", stdin: undefined, expected: { exitCode: 0, signal: null, stdout: "partial", stderr: "" } },
        ];
        for (const { command, stdin, expected } of cases) {
          const result = await runProcess(connection, { command, ...(stdin !== undefined ? { stdin } : {}) });
          expect({ exitCode: result.exitCode, signal: result.signal, stdout: result.stdout, stderr: result.stderr }).toEqual(expected);
        }
        // Binary stdin and stdout, both ways at once, several MiB.
        const echoed = connection.spawn({ command: "cat" });
        const chunks: Buffer[] = [];
        echoed.stdout.on("data", (chunk: Buffer) => chunks.push(chunk));
        echoed.stderr.resume();
        echoed.stdin.end(big);
        expect(await echoed.exit).toEqual({ exitCode: 0, signal: null });
        expect(createHash("sha256").update(Buffer.concat(chunks)).digest("hex")).toBe(createHash("sha256").update(big).digest("hex"));
        expect(await spawns()).toBe(before);
        expect(connection.workerCount).toBe(1);
      } finally {
        await connection.close();
      }
    });

    it("a command's background process that holds its output keeps the command open until it lets go, as a session of its own would", async () => {
      const connection = (await transport.connect(target)) as OpenSshConnection;
      try {
        await runProcess(connection, { command: "true" });
        await runProcess(connection, { command: "true" });
        const result = await runProcess(connection, { command: "(sleep 0.5; echo late) & echo early" });
        expect(result).toMatchObject({ exitCode: 0, stdout: "early\nlate\n" });
        expect((await runProcess(connection, { command: "echo next" })).stdout).toBe("next\n");
      } finally {
        await connection.close();
      }
    });

    it("an abort stops a command running in it, background children too, and the worker runs the next command", async () => {
      const connection = (await transport.connect(target)) as OpenSshConnection;
      try {
        await runProcess(connection, { command: "true" });
        await runProcess(connection, { command: "true" });
        const before = await spawns();
        const controller = new AbortController();
        const remote = connection.spawn({ command: "sleep 4711 & sleep 4712; echo done", signal: controller.signal });
        remote.stdin.end();
        remote.stdout.resume();
        remote.stderr.resume();
        await remote.started;
        controller.abort();
        await expect(remote.exit).rejects.toMatchObject({ code: "ABORTED" });
        const left = async () => (await remoteProcesses(target.user)).filter((entry) => /^sleep 471[12]$/.test(entry.args.trim()));
        await until(async () => (await left()).length === 0);
        expect(await left()).toEqual([]);
        expect((await runProcess(connection, { command: "echo next" })).stdout).toBe("next\n");
        expect(await spawns()).toBe(before);
        expect(connection.workerCount).toBe(1);
      } finally {
        await connection.close();
      }
    });

    it("sudo never runs on an earlier command's password: each command's sudo asks again", async () => {
      const pwsudo = sshd.users.pwsudo;
      const connection = (await transport.connect({ host: sshd.host, port: sshd.port, user: pwsudo.name })) as OpenSshConnection;
      try {
        await runProcess(connection, { command: "true" });
        await runProcess(connection, { command: "true" });
        const before = await spawns();
        // sudo without a terminal keys its cached credentials on its parent process.
        const asked = await runProcess(connection, { command: "exec sudo -S -p '' id -u", stdin: `${pwsudo.password}\n` });
        expect(asked).toMatchObject({ exitCode: 0, stdout: "0\n" });
        for (const command of ["sudo -n id -u", "exec sudo -n id -u"]) {
          const cached = await runProcess(connection, { command });
          expect(cached.exitCode).not.toBe(0);
          expect(cached.stdout).toBe("");
        }
        expect(await spawns()).toBe(before);
      } finally {
        await connection.close();
      }
    });

    it("a signal sent with kill() reaches the command's group in the worker", async () => {
      const connection = (await transport.connect(target)) as OpenSshConnection;
      try {
        await runProcess(connection, { command: "true" });
        await runProcess(connection, { command: "true" });
        const remote = connection.spawn({ command: "trap 'echo got-usr1; exit 7' USR1; echo ready; while :; do sleep 0.05; done" });
        remote.stdin.end();
        let stdout = "";
        remote.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
        remote.stderr.resume();
        await until(() => stdout.includes("ready"));
        await remote.kill("SIGUSR1");
        expect(await remote.exit).toEqual({ exitCode: 7, signal: null });
        expect(stdout).toBe("ready\ngot-usr1\n");
      } finally {
        await connection.close();
      }
    });

    it("MaxSessions 3: commands three at once in workers, then three transfers at once while the workers are idle, none refused", async () => {
      const small = await startSshd({ usePam: false, maxSessions: 3 });
      const limited = new OpenSshTransport({
        identityFile: small.clientKeyPath,
        knownHostsFile: small.knownHostsPath,
        configFile: "/dev/null",
        maxChannels: 3,
      });
      const connection = (await limited.connect({ host: small.host, port: small.port, user: target.user })) as OpenSshConnection;
      const local = await mkdtemp(join(tmpdir(), "tunnel-openssh-worker-files-"));
      try {
        for (let round = 0; round < 3; round++) {
          const results = await Promise.all([1, 2, 3].map((index) => runProcess(connection, { command: `sleep 0.2; echo ${index}` })));
          expect(results.map((result) => [result.exitCode, result.stdout])).toEqual([
            [0, "1\n"],
            [0, "2\n"],
            [0, "3\n"],
          ]);
          expect(connection.workerCount).toBeLessThanOrEqual(3);
          // Idle workers hold every session the server allows: each upload's own session waits for one to close.
          const files = [1, 2, 3].map((index) => ({ path: join(local, `${round}-${index}`), remote: `/tmp/tunnel-worker-${process.pid}-${round}-${index}` }));
          await Promise.all(files.map((file, index) => writeFile(file.path, `payload ${round} ${index}\n`)));
          await Promise.all(files.map((file) => connection.upload({ localPath: file.path, remotePath: file.remote })));
          const check = await runProcess(connection, {
            command: `cat ${files.map((file) => file.remote).join(" ")}; rm -f ${files.map((file) => file.remote).join(" ")}`,
          });
          expect(check.stdout).toBe(`payload ${round} 0\npayload ${round} 1\npayload ${round} 2\n`);
        }
      } finally {
        await connection.close();
        await small.stop();
        await rm(local, { recursive: true, force: true });
      }
    });

    it("a worker left idle leaves the host on its own, and a connection sends no command to one that may be leaving", async () => {
      const connection = (await transport.connect(target)) as OpenSshConnection;
      try {
        await runProcess(connection, { command: "true" });
        await runProcess(connection, { command: "true" });
        expect(connection.workerCount).toBe(1);
        // Idle for half its idle time (SESSION_WORKER_IDLE_SECONDS, 10 s): the next command starts a worker of its own.
        await sleep(5_500);
        const before = await spawns();
        expect((await runProcess(connection, { command: "echo after" })).stdout).toBe("after\n");
        expect(await spawns()).toBe(before + 1);
        // Left idle, the new worker leaves the host by itself, the connection still open; the next command still runs.
        await until(async () => (await hostWorkers()).length === 0 && connection.workerCount === 0);
        expect((await runProcess(connection, { command: "echo again" })).stdout).toBe("again\n");
      } finally {
        await connection.close();
      }
    }, 60_000);

    it("closing the connection ends its workers: no ssh client left here, no worker left on the host, no handle left", async () => {
      const lasting = () => {
        const counts: Record<string, number> = {};
        for (const name of process.getActiveResourcesInfo()) if (name === "ProcessWrap" || name === "PipeWrap") counts[name] = (counts[name] ?? 0) + 1;
        return counts;
      };
      const before = lasting();
      const connection = (await transport.connect(target)) as OpenSshConnection;
      await runProcess(connection, { command: "true" });
      await Promise.all([1, 2, 3].map(() => runProcess(connection, { command: "sleep 0.2" })));
      expect(connection.workerCount).toBe(3);
      await until(async () => (await hostWorkers()).length === 3);
      await connection.close();
      expect(lasting()).toEqual(before);
      expect(localProcessesNaming(connection.controlPath)).toEqual([]);
      await until(async () => (await hostWorkers()).length === 0);
    });

    it("a busy worker's command is stopped when the connection closes under it", async () => {
      const connection = (await transport.connect(target)) as OpenSshConnection;
      await runProcess(connection, { command: "true" });
      await runProcess(connection, { command: "true" });
      const remote = connection.spawn({ command: "sleep 4713" });
      remote.stdin.end();
      remote.stdout.resume();
      remote.stderr.resume();
      await remote.started;
      await connection.close();
      await expect(remote.exit).rejects.toBeDefined();
      await until(async () => !(await remoteProcesses(target.user)).some((entry) => entry.args.trim() === "sleep 4713"));
    });
  });
}
