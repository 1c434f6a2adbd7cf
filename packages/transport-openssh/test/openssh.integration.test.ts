/**
 * What only the OpenSSH transport has to prove, against a real sshd: the master is never bypassed, MaxSessions
 * shows as a channel error, host keys and passwords are handled safely, transfers stream through the master.
 */
import { randomBytes } from "node:crypto";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { mkdtemp, readFile, rm, truncate, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runProcess, TunnelError, type Connection, type Progress } from "@tunnel-sh/core";
import { remoteProcesses, sshdSupport, startSshd, type Sshd } from "@tunnel-sh/testing";
import { OpenSshTransport, type OpenSshConnection } from "../src/index.js";

const support = sshdSupport();

describe("sshd availability", () => {
  it("has a runnable sshd (in CI this is required)", () => {
    expect(support.available || !process.env["CI"]).toBe(true);
  });
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function eventually(predicate: () => boolean | Promise<boolean>, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (!(await predicate())) {
    if (Date.now() > deadline) return false;
    await sleep(25);
  }
  return true;
}

/** "Accepted ..." lines in the sshd log: one per authenticated TCP connection. */
function acceptedConnections(sshd: Sshd): number {
  return (readFileSync(sshd.logPath, "utf8").match(/Accepted (?:publickey|password|keyboard-interactive)/g) ?? []).length;
}

function alive(pid: number | undefined): boolean {
  if (!pid) return false;
  try {
    process.kill(pid, 0);
    const state = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.[0];
    return state !== "Z";
  } catch {
    return false;
  }
}

/** Run `task` over `items`, a few at a time (the server's MaxSessions is 10). */
async function inBatches<T, R>(items: readonly T[], task: (item: T) => Promise<R>, size = 5): Promise<R[]> {
  const results: R[] = [];
  for (let index = 0; index < items.length; index += size) results.push(...(await Promise.all(items.slice(index, index + size).map(task))));
  return results;
}

async function outcome(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
    return undefined;
  } catch (error) {
    return error;
  }
}

if (support.available) {
  describe("OpenSshTransport on a real sshd", () => {
    let sshd: Sshd;
    let transport: OpenSshTransport;
    let target: { host: string; port: number; user: string };
    const opened: Connection[] = [];
    const connect = async (using = transport) => {
      const connection = (await using.connect(target)) as OpenSshConnection;
      opened.push(connection);
      return connection;
    };

    beforeAll(async () => {
      sshd = await startSshd({ usePam: false });
      transport = new OpenSshTransport({ identityFile: sshd.clientKeyPath, knownHostsFile: sshd.knownHostsPath, configFile: "/dev/null" });
      target = { host: sshd.host, port: sshd.port, user: sshd.users.plain.name };
    }, 60_000);

    afterAll(async () => {
      await Promise.all(opened.map((connection) => connection.close()));
      await sshd?.stop();
    }, 60_000);

    it("exit codes in the 128+N range come back as exit codes, and signals as signals (exact, through perl on the host)", async () => {
      const connection = await connect();
      const codes = [0, 1, 42, 126, 127, 128, 129, 130, 137, 143, 192, 193, 254, 255];
      const byCode = await inBatches(codes, (code) => runProcess(connection, { command: `echo code-${code}; exit ${code}` }));
      byCode.forEach((result, index) => {
        expect(result, `exit ${codes[index]}`).toMatchObject({ exitCode: codes[index], signal: null, stdout: `code-${codes[index]}\n` });
      });
      const signals = ["INT", "TERM", "KILL", "HUP", "ALRM", "USR1", "PIPE"];
      const bySignal = await inBatches(signals, (signal) => runProcess(connection, { command: `kill -${signal} $$; echo not-reached` }));
      bySignal.forEach((result, index) => {
        expect(result, `kill -${signals[index]} $$`).toMatchObject({ exitCode: null, signal: `SIG${signals[index]}`, stdout: "" });
      });
      // A child killed by a signal while its shell goes on is the shell's business: the shell's own exit counts.
      expect(await runProcess(connection, { command: "sh -c 'kill -INT $$'; echo $?" })).toMatchObject({ exitCode: 0, stdout: "130\n" });
    }, 60_000);

    it("master killed mid-command: typed error, onClose once, and no silent direct connection afterwards", async () => {
      const connection = await connect();
      const closes: unknown[] = [];
      connection.onClose((error) => closes.push(error));
      const before = acceptedConnections(sshd);
      const running = runProcess(connection, { command: "echo started; sleep 30", onStdout: () => process.kill(connection.masterPid!, "SIGKILL") });
      const error = await outcome(running);
      expect(TunnelError.is(error) && error.code).toBe("CONNECTION_LOST");
      expect(await eventually(() => connection.closed, 20_000)).toBe(true);
      expect(closes).toHaveLength(1);
      expect(TunnelError.is(closes[0])).toBe(true);
      // A new exec on the dead connection fails fast instead of dialling the server itself.
      const after = connection.spawn({ command: "echo direct" });
      expect(TunnelError.is(await outcome(after.started))).toBe(true);
      await sleep(300);
      expect(acceptedConnections(sshd)).toBe(before);
    });

    it("a stale control socket (master gone) is a CONNECTION_LOST error, never a new connection", async () => {
      const connection = await connect();
      const before = acceptedConnections(sshd);
      // Stop the master behind the connection's back, leaving it unaware: the next mux client finds no master.
      process.kill(connection.masterPid!, "SIGSTOP");
      try {
        const remote = connection.spawn({ command: "echo through-master" });
        remote.stdin.end();
        process.kill(connection.masterPid!, "SIGKILL");
        const error = await outcome(remote.exit);
        expect(TunnelError.is(error) && error.code, String(error)).toBe("CONNECTION_LOST");
      } finally {
        try {
          process.kill(connection.masterPid!, "SIGCONT");
        } catch {
          // gone
        }
      }
      expect(await eventually(() => connection.closed, 20_000)).toBe(true);
      await sleep(300);
      expect(acceptedConnections(sshd)).toBe(before);
    });

    it("dropping the server side of the connection fails the command with CONNECTION_LOST", async () => {
      const connection = await connect();
      const closes: unknown[] = [];
      connection.onClose((error) => closes.push(error));
      let serverChild: number | undefined;
      const running = runProcess(connection, {
        command: "echo $$; sleep 60",
        onStdout: (text) => {
          const shell = Number(text.trim());
          void remoteProcesses(target.user).then((processes) => {
            // Walk up from the command's shell to the sshd process serving this connection.
            let pid: number | undefined = shell;
            while (pid) {
              const entry = processes.find((candidate) => candidate.pid === pid);
              if (!entry) break;
              if (entry.args.startsWith("sshd:")) {
                serverChild = entry.pid;
                process.kill(entry.pid, "SIGKILL");
                return;
              }
              pid = entry.ppid;
            }
          });
        },
      });
      const error = await outcome(running);
      expect(serverChild).toBeGreaterThan(0);
      expect(TunnelError.is(error) && error.code).toBe("CONNECTION_LOST");
      expect(await eventually(() => connection.closed, 20_000)).toBe(true);
      expect(closes).toHaveLength(1);
    });

    it("close(): the master is gone, its folder removed, nothing left behind", async () => {
      const connection = await connect();
      const pid = connection.masterPid;
      const folder = join(connection.controlPath, "..");
      expect(alive(pid)).toBe(true);
      expect(readdirSync(folder)).toEqual(["s"]);
      await connection.close();
      expect(alive(pid)).toBe(false);
      expect(existsSync(folder)).toBe(false);
      await expect(connection.ping()).rejects.toMatchObject({ code: "CONNECTION_LOST" });
    });

    it("a connection starts one ssh process to open (no -O check) that runs its first command, one session worker for the later ones, and none to close (no -O exit)", async () => {
      const dir = await mkdtemp(join(tmpdir(), "tunnel-openssh-test-"));
      try {
        const log = join(dir, "invocations");
        const wrapper = join(dir, "ssh");
        await writeFile(wrapper, `#!/bin/sh\nprintf '%s\\n' "$*" >> '${log}'\nexec ssh "$@"\n`, { mode: 0o755 });
        const invocations = async () => (await readFile(log, "utf8").catch(() => "")).split("\n").filter(Boolean);
        const counted = new OpenSshTransport({
          identityFile: sshd.clientKeyPath,
          knownHostsFile: sshd.knownHostsPath,
          configFile: "/dev/null",
          sshPath: wrapper,
        });
        const connection = (await counted.connect(target)) as OpenSshConnection;
        const pid = connection.masterPid;
        const afterConnect = await invocations();
        expect(afterConnect).toHaveLength(1);
        expect(afterConnect[0]).toMatch(/(^| )-M( |$)/);
        // The first command runs in the master's own session: no process of its own.
        expect(await runProcess(connection, { command: "echo ran" })).toMatchObject({ exitCode: 0, stdout: "ran\n" });
        expect(await invocations()).toHaveLength(1);
        // The master outlived its session: the next command is a mux client of it, a session worker that stays.
        expect(await runProcess(connection, { command: "echo again" })).toMatchObject({ exitCode: 0, stdout: "again\n" });
        const afterSecond = await invocations();
        expect(afterSecond).toHaveLength(2);
        expect(/ -S /.test(` ${afterSecond[1]}`) && !/(^| )-M( |$)/.test(afterSecond[1]!)).toBe(true);
        // Every later command runs in that worker: no ssh process of its own.
        for (let round = 0; round < 5; round++) {
          expect(await runProcess(connection, { command: `echo round-${round}` })).toMatchObject({ exitCode: 0, stdout: `round-${round}\n` });
        }
        expect(await invocations()).toHaveLength(2);
        await connection.close();
        const all = await invocations();
        expect(all).toHaveLength(2);
        expect(all.some((line) => / -O /.test(line))).toBe(false);
        expect(alive(pid)).toBe(false);
        expect(existsSync(join(connection.controlPath, ".."))).toBe(false);
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    });

    it("ping() answers through -O check", async () => {
      const connection = await connect();
      await connection.ping();
    });

    it("a changed host key is refused with HostKeyError", async () => {
      const dir = await mkdtemp(join(tmpdir(), "tunnel-openssh-test-"));
      try {
        const other = `[${sshd.host}]:${sshd.port} ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHgaOb+auZutE/V24uV2AHLy2Rmmq3SOHwk+k/25Rsfs\n`;
        await writeFile(join(dir, "known_hosts"), other);
        const strict = new OpenSshTransport({ identityFile: sshd.clientKeyPath, knownHostsFile: join(dir, "known_hosts"), configFile: "/dev/null" });
        const error = await outcome(strict.connect(target));
        expect(error).toMatchObject({ code: "HOST_KEY", retryable: false });
        expect((error as { fingerprint?: string }).fingerprint).toMatch(/^SHA256:/);
        // accept-new does not accept a *changed* key either.
        const acceptNew = new OpenSshTransport({
          identityFile: sshd.clientKeyPath,
          knownHostsFile: join(dir, "known_hosts"),
          hostKeyChecking: "accept-new",
          configFile: "/dev/null",
        });
        expect(await outcome(acceptNew.connect(target))).toMatchObject({ code: "HOST_KEY" });
        // An unknown host with accept-new is recorded.
        const fresh = new OpenSshTransport({
          identityFile: sshd.clientKeyPath,
          knownHostsFile: join(dir, "empty_known_hosts"),
          hostKeyChecking: "accept-new",
          configFile: "/dev/null",
        });
        const connection = await fresh.connect(target);
        await connection.close();
        expect(await readFile(join(dir, "empty_known_hosts"), "utf8")).toContain(sshd.hostPublicKey.split(" ")[1]);
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    });

    it("connects through jump hosts (proxyJump) that get the transport's own keys and known_hosts files", async () => {
      const jumpHost = await startSshd({ usePam: false });
      try {
        const hop = `${jumpHost.users.plain.name}@${jumpHost.host}:${jumpHost.port}`;
        const settings = { identityFile: sshd.clientKeyPath, configFile: false, agent: false } as const;
        const accepted = () => acceptedConnections(jumpHost);
        const before = accepted();
        // Two hops through the same jump host: the inner command is nested (and escaped) inside the outer one.
        for (const [proxyJump, hops] of [
          [hop, 1],
          [`${hop},${hop}`, 2],
        ] as const) {
          const through = new OpenSshTransport({ ...settings, knownHostsFile: [sshd.knownHostsPath, jumpHost.knownHostsPath], proxyJump });
          const start = accepted();
          const connection = await through.connect(target);
          expect((await runProcess(connection, { command: "echo via-jump" })).stdout).toBe("via-jump\n");
          await connection.close();
          expect(accepted() - start).toBe(hops);
        }
        expect(accepted() - before).toBe(3);
        // The jump host's key is checked against knownHostsFile too: without its line the connect is refused.
        const unverified = new OpenSshTransport({ ...settings, knownHostsFile: sshd.knownHostsPath, proxyJump: hop });
        expect(await outcome(unverified.connect(target))).toMatchObject({ code: "HOST_KEY", retryable: false });
      } finally {
        await jumpHost.stop();
      }
    });

    it("refused connections and wrong keys are typed", async () => {
      const closed = new OpenSshTransport({ identityFile: sshd.clientKeyPath, knownHostsFile: sshd.knownHostsPath, configFile: "/dev/null" });
      expect(await outcome(closed.connect({ ...target, port: 1 }))).toMatchObject({ code: "CONNECT", retryable: true });
      expect(await outcome(closed.connect({ ...target, user: "tunnel_nobody" }))).toMatchObject({ code: "AUTHENTICATION", retryable: false });
    });

    it("password auth through askpass: the password is never on any command line", async () => {
      const password = sshd.users.plain.password;
      const withPassword = new OpenSshTransport({
        password,
        knownHostsFile: sshd.knownHostsPath,
        configFile: "/dev/null",
        options: { PubkeyAuthentication: "no" },
      });
      const leaks: string[] = [];
      let sampling = true;
      const sampler = (async () => {
        while (sampling) {
          for (const entry of readdirSync("/proc")) {
            if (!/^\d+$/.test(entry)) continue;
            try {
              const commandLine = readFileSync(`/proc/${entry}/cmdline`, "utf8");
              if (commandLine.includes(password)) leaks.push(commandLine.replace(/\0/g, " "));
            } catch {
              // exited meanwhile
            }
          }
          await sleep(2);
        }
      })();
      try {
        const connection = (await withPassword.connect(target)) as OpenSshConnection;
        opened.push(connection);
        const result = await runProcess(connection, { command: "id -un" });
        expect(result.stdout).toBe(`${target.user}\n`);
        // The secret's file is gone once the master is up.
        expect(readdirSync(join(connection.controlPath, ".."))).not.toContain("password");
        const wrong = new OpenSshTransport({
          password: "not-the-password",
          knownHostsFile: sshd.knownHostsPath,
          configFile: "/dev/null",
          options: { PubkeyAuthentication: "no" },
        });
        const error = await outcome(wrong.connect(target));
        expect(error).toMatchObject({ code: "AUTHENTICATION" });
        expect(String((error as Error).message)).not.toContain("not-the-password");
      } finally {
        sampling = false;
        await sampler;
      }
      expect(leaks).toEqual([]);
    });

    it("upload and download stream through the master, byte-identical, with progress ending at the total", async () => {
      const connection = await connect();
      const dir = await mkdtemp(join(tmpdir(), "tunnel-openssh-test-"));
      try {
        const payload = randomBytes(6 * 1024 * 1024 + 7);
        await writeFile(join(dir, "up.bin"), payload);
        const remotePath = `/tmp/tunnel-openssh-${randomBytes(6).toString("hex")}.bin`;
        const upProgress: Progress[] = [];
        await connection.upload({ localPath: join(dir, "up.bin"), remotePath, mode: 0o640, onProgress: (progress) => upProgress.push(progress) });
        const mode = await runProcess(connection, { command: `stat -c %a ${remotePath}` });
        expect(mode.stdout).toBe("640\n");
        const downProgress: Progress[] = [];
        const chunks: Buffer[] = [];
        await connection.download({
          remotePath,
          localPath: join(dir, "down.bin"),
          onProgress: (progress) => downProgress.push(progress),
          onData: (chunk) => chunks.push(Buffer.from(chunk)),
        });
        expect((await readFile(join(dir, "down.bin"))).equals(payload)).toBe(true);
        // The bytes, followed behind the master as the file grows, in order and each once.
        expect(Buffer.concat(chunks).equals(payload)).toBe(true);
        for (const series of [upProgress, downProgress]) {
          expect(series.at(-1)).toMatchObject({ bytes: payload.length, total: payload.length });
          expect(series.filter((progress) => progress.bytes === payload.length)).toHaveLength(1);
          series.forEach((progress, index) => index > 0 && expect(progress.bytes).toBeGreaterThanOrEqual(series[index - 1]!.bytes));
        }
        // A size that is a multiple of the page size (GNU wc then seeks instead of reading).
        const exact = randomBytes(1024 * 1024);
        await writeFile(join(dir, "exact.bin"), exact);
        await connection.upload({ localPath: join(dir, "exact.bin"), remotePath: `${remotePath}.exact` });
        await connection.download({ remotePath: `${remotePath}.exact`, localPath: join(dir, "exact.down") });
        expect((await readFile(join(dir, "exact.down"))).equals(exact)).toBe(true);
        await runProcess(connection, { command: `rm -f ${remotePath}.exact` });
        // Empty files both ways.
        await writeFile(join(dir, "empty"), "");
        await connection.upload({ localPath: join(dir, "empty"), remotePath: `${remotePath}.empty` });
        await connection.download({ remotePath: `${remotePath}.empty`, localPath: join(dir, "empty.down") });
        expect((await readFile(join(dir, "empty.down"))).length).toBe(0);
        await runProcess(connection, { command: `rm -f ${remotePath} ${remotePath}.empty` });
        // Failures are TransferErrors and leave the connection usable.
        expect(await outcome(connection.download({ remotePath: "/nonexistent/file", localPath: join(dir, "x") }))).toMatchObject({ code: "TRANSFER" });
        expect(await outcome(connection.upload({ localPath: join(dir, "up.bin"), remotePath: "/nonexistent/dir/file" }))).toMatchObject({ code: "TRANSFER" });
        expect(await outcome(connection.upload({ localPath: join(dir, "missing"), remotePath }))).toMatchObject({ code: "TRANSFER" });
        expect((await runProcess(connection, { command: "echo ok" })).stdout).toBe("ok\n");
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    }, 60_000);

    it("an aborted upload stops the remote cat and rejects with AbortError", async () => {
      const connection = await connect();
      const dir = await mkdtemp(join(tmpdir(), "tunnel-openssh-test-"));
      try {
        await writeFile(join(dir, "big.bin"), randomBytes(64 * 1024 * 1024));
        const controller = new AbortController();
        const remotePath = `/tmp/tunnel-openssh-${randomBytes(6).toString("hex")}.bin`;
        const uploading = connection.upload({
          localPath: join(dir, "big.bin"),
          remotePath,
          signal: controller.signal,
          onProgress: () => controller.abort(),
        });
        expect(await outcome(uploading)).toMatchObject({ code: "ABORTED" });
        const cats = (await remoteProcesses(target.user)).filter((entry) => entry.args.includes(remotePath));
        expect(cats).toEqual([]);
        await runProcess(connection, { command: `rm -f ${remotePath}` });
        expect(connection.closed).toBe(false);
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    }, 60_000);
    it("a transfer whose master dies under it fails with CONNECTION_LOST, both ways", async () => {
      const dir = await mkdtemp(join(tmpdir(), "tunnel-openssh-test-"));
      // Sparse 1 GiB files: cheap to make, long enough to move that the master dies mid-way on any machine.
      const remotePath = `/tmp/tunnel-openssh-${randomBytes(6).toString("hex")}.bin`;
      try {
        await writeFile(join(dir, "big.bin"), "");
        await truncate(join(dir, "big.bin"), 1024 ** 3);
        const killMaster = (connection: OpenSshConnection) => {
          let killed = false;
          return () => {
            if (killed) return;
            killed = true;
            process.kill(connection.masterPid!, "SIGKILL");
          };
        };
        const uploader = await connect();
        const upload = await outcome(uploader.upload({ localPath: join(dir, "big.bin"), remotePath: `${remotePath}.up`, onProgress: killMaster(uploader) }));
        expect(upload, String(upload)).toMatchObject({ code: "CONNECTION_LOST" });
        const downloader = await connect();
        await runProcess(downloader, { command: `truncate -s 1G ${remotePath}` });
        const download = await outcome(downloader.download({ remotePath, localPath: join(dir, "back.bin"), onProgress: killMaster(downloader) }));
        expect(download, String(download)).toMatchObject({ code: "CONNECTION_LOST" });
      } finally {
        const cleaner = await connect();
        await runProcess(cleaner, { command: `rm -f ${remotePath} ${remotePath}.up` });
        await rm(dir, { recursive: true, force: true });
      }
    }, 60_000);
  });

  describe("OpenSshTransport against a server with MaxSessions 2", () => {
    let sshd: Sshd;
    beforeAll(async () => {
      sshd = await startSshd({ maxSessions: 2, usePam: false });
    }, 60_000);
    afterAll(async () => {
      await sshd?.stop();
    });

    it("a third session is a refused ChannelError, not a hidden second connection; the connection stays usable", async () => {
      const transport = new OpenSshTransport({ identityFile: sshd.clientKeyPath, knownHostsFile: sshd.knownHostsPath, configFile: "/dev/null" });
      const connection = await transport.connect({ host: sshd.host, port: sshd.port, user: sshd.users.plain.name });
      try {
        expect(connection.maxChannels).toBe(10);
        const before = acceptedConnections(sshd);
        const holders = [0, 1].map(() => {
          const remote = connection.spawn({ command: "read line" });
          return remote;
        });
        await Promise.all(holders.map((remote) => remote.started));
        const third = connection.spawn({ command: "echo third" });
        third.stdin.end();
        const error = await outcome(third.started);
        expect(error).toMatchObject({ code: "CHANNEL", refused: true, retryable: true });
        expect(await outcome(third.exit)).toBe(error);
        expect(connection.closed).toBe(false);
        for (const remote of holders) remote.stdin.end("go\n");
        expect(await Promise.all(holders.map((remote) => remote.exit))).toEqual([
          { exitCode: 0, signal: null },
          { exitCode: 0, signal: null },
        ]);
        expect((await runProcess(connection, { command: "echo after" })).stdout).toBe("after\n");
        await sleep(200);
        expect(acceptedConnections(sshd)).toBe(before);
      } finally {
        await connection.close();
      }
    });
  });

  describe("OpenSshTransport against a server with MaxSessions 1 (no second channel for a kill)", () => {
    let sshd: Sshd;
    beforeAll(async () => {
      sshd = await startSshd({ maxSessions: 1, usePam: false });
    }, 60_000);
    afterAll(async () => {
      await sshd?.stop();
    });

    const connectOne = () =>
      new OpenSshTransport({ identityFile: sshd.clientKeyPath, knownHostsFile: sshd.knownHostsPath, configFile: "/dev/null", maxChannels: 1 }).connect({
        host: sshd.host,
        port: sshd.port,
        user: sshd.users.plain.name,
      });
    const sleeping = async (seconds: string) => (await remoteProcesses(sshd.users.plain.name)).filter((entry) => entry.args.trim() === `sleep ${seconds}`);

    it("kill() stops the command's whole tree in band, and the connection stays usable", async () => {
      const connection = await connectOne();
      try {
        const seconds = `${500 + Math.floor(Math.random() * 400)}.3`;
        const remote = connection.spawn({ command: `sleep ${seconds} & sleep ${seconds}; echo done` });
        remote.stdin.end();
        await remote.started;
        expect(await eventually(async () => (await sleeping(seconds)).length === 2, 10_000)).toBe(true);
        await remote.kill("SIGTERM");
        expect(await remote.exit).toEqual({ exitCode: null, signal: "SIGTERM" });
        expect(await sleeping(seconds)).toEqual([]);
        expect(connection.closed).toBe(false);
        expect((await runProcess(connection, { command: "echo after" })).stdout).toBe("after\n");
      } finally {
        await connection.close();
      }
    });

    it("a command never outlives its channel: closing the connection under it stops it on the host", async () => {
      const connection = await connectOne();
      const seconds = `${500 + Math.floor(Math.random() * 400)}.4`;
      const remote = connection.spawn({ command: `sleep ${seconds}; echo done` });
      await remote.started;
      expect(await eventually(async () => (await sleeping(seconds)).length === 1, 10_000)).toBe(true);
      await connection.close();
      await outcome(remote.exit);
      expect(await eventually(async () => (await sleeping(seconds)).length === 0, 10_000)).toBe(true);
    });

    it("stdin passes exactly (every byte value, megabytes), its end reaches the command, and the command runs on", async () => {
      const connection = await connectOne();
      try {
        const data = Buffer.concat([Buffer.from(Array.from({ length: 256 }, (_, byte) => byte)), randomBytes(3 * 1024 * 1024)]);
        const remote = connection.spawn({ command: "cat; echo after-eof" });
        const chunks: Buffer[] = [];
        remote.stdout.on("data", (chunk: Buffer) => chunks.push(chunk));
        remote.stdin.end(data);
        expect(await remote.exit).toEqual({ exitCode: 0, signal: null });
        expect(Buffer.concat(chunks).equals(Buffer.concat([data, Buffer.from("after-eof\n")]))).toBe(true);
      } finally {
        await connection.close();
      }
    });
  });
}
