/**
 * Sessions opened ahead of their commands (`standby-session.ts`), against a real sshd: a connection that runs one
 * command after another without session workers (`exactExitStatus: false` here; a host without perl) keeps one
 * session ready, its waiter started on the host, and the next command only has to be written to it — with every
 * result the same as from a session opened for the command.
 */
import { chmod, mkdtemp, rm, writeFile } from "node:fs/promises";
import { readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runProcess } from "@tunnel-sh/core";
import { remoteProcesses, sshdSupport, startSshd, type Sshd } from "@tunnel-sh/testing";
import { OpenSshTransport, type OpenSshConnection } from "../src/index.js";
import { countingSsh, localProcessesNaming, until } from "./session-support.js";

const support = sshdSupport();

describe("sshd availability", () => {
  it("has a runnable sshd (in CI this is required)", () => {
    expect(support.available || !process.env["CI"]).toBe(true);
  });
});

/** The parent pid of `pid`, or undefined once it is gone. */
/** What `remote` writes on stdout and stderr, read as it comes; `text()` gives both so far. */
function collect(remote: { readonly stdout: NodeJS.ReadableStream; readonly stderr: NodeJS.ReadableStream }): () => { stdout: string; stderr: string } {
  const stdout: Buffer[] = [];
  const stderr: Buffer[] = [];
  remote.stdout.on("data", (chunk: Buffer) => stdout.push(chunk));
  remote.stderr.on("data", (chunk: Buffer) => stderr.push(chunk));
  return () => ({ stdout: Buffer.concat(stdout).toString(), stderr: Buffer.concat(stderr).toString() });
}

function parentOf(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "latin1");
    return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
  } catch {
    return undefined;
  }
}

if (support.available) {
  describe("a session opened ahead of its command", () => {
    let sshd: Sshd;
    let folder: string;
    let spawns: () => Promise<number>;
    let transport: OpenSshTransport;
    let target: { host: string; port: number; user: string };

    /** Waiters of this sshd's sessions that wait for their command (started ahead of it). */
    const waitingWaiters = async () =>
      (await remoteProcesses(target.user)).filter((entry) => {
        if (!entry.args.includes(":ready:")) return false;
        for (let pid: number | undefined = entry.ppid; pid !== undefined && pid > 1; pid = parentOf(pid)) if (pid === sshd.pid) return true;
        return false;
      });

    beforeAll(async () => {
      sshd = await startSshd({ usePam: false });
      folder = await mkdtemp(join(tmpdir(), "tunnel-openssh-standby-"));
      // Every ssh the transport starts, logged before it runs.
      const counting = await countingSsh(folder);
      const sshPath = counting.sshPath;
      spawns = counting.spawns;
      target = { host: sshd.host, port: sshd.port, user: sshd.users.plain.name };
      transport = new OpenSshTransport({
        identityFile: sshd.clientKeyPath,
        knownHostsFile: sshd.knownHostsPath,
        configFile: "/dev/null",
        sshPath,
        exactExitStatus: false,
      });
    });

    afterAll(async () => {
      await sshd?.stop();
      if (folder) await rm(folder, { recursive: true, force: true });
    });

    it("a connection of one command opens none", async () => {
      const connection = (await transport.connect(target)) as OpenSshConnection;
      try {
        expect((await runProcess(connection, { command: "true" })).exitCode).toBe(0);
        expect(connection.standbyReady).toBe(false);
        // Only the master and the one command's client were started; none is left beside the master.
        expect(localProcessesNaming(connection.controlPath).filter((pid) => pid !== connection.masterPid)).toEqual([]);
      } finally {
        await connection.close();
      }
    });

    it("from the third command on, a command starts no ssh of its own, with exact output, stdin and status", async () => {
      const connection = (await transport.connect(target)) as OpenSshConnection;
      try {
        await runProcess(connection, { command: "true" });
        await runProcess(connection, { command: "true" });
        const cases = [
          {
            command: "cat; printf '%s' \"$1x%\" >&2; exit 3",
            stdin: "bytes \\ ' %\n",
            expected: { exitCode: 3, signal: null, stdout: "bytes \\ ' %\n", stderr: "x%" },
          },
          { command: "printf '%s' \"$1x\"; kill -INT $$", stdin: undefined, expected: { exitCode: null, signal: "SIGINT", stdout: "x", stderr: "" } },
          { command: "exit 255", stdin: undefined, expected: { exitCode: 255, signal: null, stdout: "", stderr: "" } },
        ];
        for (const { command, stdin, expected } of cases) {
          await until(() => connection.standbyReady);
          const before = await spawns();
          const remote = connection.spawn({ command });
          remote.stdin.end(stdin);
          const output = collect(remote);
          await remote.started;
          // A client started for this command would have logged itself before the command could start.
          expect(await spawns()).toBe(before);
          const status = await remote.exit;
          expect({ ...status, ...output() }).toEqual(expected);
        }
      } finally {
        await connection.close();
      }
    });

    it("an abort stops a command running in it, background children too", async () => {
      const connection = (await transport.connect(target)) as OpenSshConnection;
      try {
        await runProcess(connection, { command: "true" });
        await runProcess(connection, { command: "true" });
        await until(() => connection.standbyReady);
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
      } finally {
        await connection.close();
      }
    });

    it("never holds a channel the connection's commands need: MaxSessions 3, three commands at once, none refused", async () => {
      const small = await startSshd({ usePam: false, maxSessions: 3 });
      const limited = new OpenSshTransport({
        identityFile: small.clientKeyPath,
        knownHostsFile: small.knownHostsPath,
        configFile: "/dev/null",
        maxChannels: 3,
        exactExitStatus: false,
      });
      const connection = (await limited.connect({ host: small.host, port: small.port, user: target.user })) as OpenSshConnection;
      try {
        for (let round = 0; round < 4; round++) {
          await runProcess(connection, { command: "true" });
          await runProcess(connection, { command: "true" });
          // Three at once on three channels: one of them the standby session, ready or on its way.
          const results = await Promise.all([1, 2, 3].map((index) => runProcess(connection, { command: `sleep 0.2; echo ${index}` })));
          expect(results.map((result) => [result.exitCode, result.stdout])).toEqual([
            [0, "1\n"],
            [0, "2\n"],
            [0, "3\n"],
          ]);
        }
      } finally {
        await connection.close();
        await small.stop();
      }
    });

    it("close() resolves once the ready session's ssh client is gone from this process: no process or pipe handle left", async () => {
      const lasting = () => {
        const counts: Record<string, number> = {};
        for (const name of process.getActiveResourcesInfo()) if (name === "ProcessWrap" || name === "PipeWrap") counts[name] = (counts[name] ?? 0) + 1;
        return counts;
      };
      // Clients that outlive their SIGTERM, end with the master and exit a moment after their pipes have closed: the
      // last of the connection's processes to go, their exit the last of their events, as a busy machine may see it.
      const slowPath = join(folder, "ssh-slow-clients");
      await writeFile(slowPath, `#!/bin/sh\ncase " $* " in *" -M "*) exec ssh "$@" ;; esac\ntrap '' TERM\nssh "$@"\nexec 0<&- 1>&- 2>&-\nsleep 0.3\n`);
      await chmod(slowPath, 0o755);
      const slow = new OpenSshTransport({
        identityFile: sshd.clientKeyPath,
        knownHostsFile: sshd.knownHostsPath,
        configFile: "/dev/null",
        sshPath: slowPath,
        exactExitStatus: false,
      });
      const before = lasting();
      const connection = (await slow.connect(target)) as OpenSshConnection;
      await runProcess(connection, { command: "true" });
      await runProcess(connection, { command: "true" });
      await until(() => connection.standbyReady);
      await connection.close();
      expect(lasting()).toEqual(before);
    });

    it("closing the connection ends the session that waits for a command: no waiter is left on the host", async () => {
      const connection = (await transport.connect(target)) as OpenSshConnection;
      await runProcess(connection, { command: "true" });
      await runProcess(connection, { command: "true" });
      await until(() => connection.standbyReady);
      expect((await waitingWaiters()).length).toBe(1);
      await connection.close();
      await until(async () => (await waitingWaiters()).length === 0);
      expect(localProcessesNaming(connection.controlPath)).toEqual([]);
    });
  });
}
