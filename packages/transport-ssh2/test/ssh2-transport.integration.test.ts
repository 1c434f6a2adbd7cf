import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runProcess, type Connection, type Progress, type RemoteProcess } from "@tunnel-sh/core";
import { remoteProcesses, startFaultProxy, startSshd, type Sshd } from "@tunnel-sh/testing";
import { Ssh2Transport, type Ssh2TransportOptions } from "../src/index.js";

// No guard: where sshd cannot run, startSshd() rejects with the reason and these suites fail rather than skip.
/** A well-formed ed25519 key that no test server has. */
const OTHER_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAICa6QN951YjE5ApEM6KMoDac021WVZAzVfxS4l7zKRxC";

/** Options for a transport that logs in to `sshd` with its client key, nothing from the user's own set-up. */
const base = (sshd: Sshd, extra: Ssh2TransportOptions = {}): Ssh2TransportOptions => ({
  identityFile: sshd.clientKeyPath,
  knownHostsFile: sshd.knownHostsPath,
  configFile: false,
  agent: false,
  ...extra,
});
const targetOf = (sshd: Sshd) => ({ host: sshd.host, port: sshd.port, user: sshd.users.plain.name });

async function run(connection: Connection, command: string): Promise<{ stdout: string; exitCode: number | null }> {
  const process = connection.spawn({ command });
  process.stdin.end();
  let stdout = "";
  process.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
  process.stderr.resume();
  const status = await process.exit;
  return { stdout, exitCode: status.exitCode };
}

/** Resolves once `check` holds, however long that takes (the test's timeout is the only bound). */
async function until(check: () => boolean): Promise<void> {
  while (!check()) await new Promise((resolve) => setTimeout(resolve, 20));
}

function socketsTo(port: number): string[] {
  const lines = execFileSync("ss", ["-tnpH", "state", "established", `( dport = :${port} )`], { encoding: "utf8" }).split("\n");
  return lines.filter((line) => line.includes(`pid=${process.pid},`));
}

describe("Ssh2Transport on real OpenSSH sshd", () => {
  let pam: Sshd; // UsePAM yes: keyboard-interactive works
  let plain: Sshd; // UsePAM no: wrong passwords fail fast; also the jump host
  let scratch: string;

  beforeAll(async () => {
    [pam, plain] = await Promise.all([startSshd(), startSshd({ usePam: false })]);
    scratch = mkdtempSync(join(tmpdir(), "tunnel-ssh2-it-"));
  });
  afterAll(async () => {
    await Promise.all([pam?.stop(), plain?.stop()]);
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  });

  describe("host keys", () => {
    it("refuses a changed host key with HostKeyError, not retryable, naming the fingerprint", async () => {
      const file = join(scratch, "changed_known_hosts");
      writeFileSync(file, `[${pam.host}]:${pam.port} ${OTHER_KEY}\n`);
      const error = await new Ssh2Transport(base(pam, { knownHostsFile: file })).connect(targetOf(pam)).catch((caught: unknown) => caught);
      expect(error).toMatchObject({ name: "HostKeyError", code: "HOST_KEY", retryable: false });
      expect((error as Error).message).toMatch(/CHANGED/);
      expect((error as { fingerprint?: string }).fingerprint).toMatch(/^SHA256:/);
    });

    it("refuses an unknown host under the default strict policy", async () => {
      const file = join(scratch, "empty_known_hosts");
      writeFileSync(file, "");
      await expect(new Ssh2Transport(base(pam, { knownHostsFile: file })).connect(targetOf(pam))).rejects.toMatchObject({ code: "HOST_KEY" });
    });

    it("accepts a host listed through a hashed entry (ssh-keygen -H)", async () => {
      const file = join(scratch, "hashed_known_hosts");
      writeFileSync(file, `${pam.knownHostsLine}\n`);
      execFileSync("ssh-keygen", ["-H", "-f", file], { stdio: "ignore" });
      expect(readFileSync(file, "utf8")).toMatch(/^\|1\|/);
      const connection = await new Ssh2Transport(base(pam, { knownHostsFile: file })).connect(targetOf(pam));
      expect((await run(connection, "echo hashed-ok")).stdout).toBe("hashed-ok\n");
      await connection.close();
    });

    it("accept-new appends the new host, then strict accepts it", async () => {
      const file = join(scratch, "accept_new", "known_hosts");
      const connection = await new Ssh2Transport(base(pam, { knownHostsFile: file, hostKeyChecking: "accept-new" })).connect(targetOf(pam));
      await connection.close();
      expect(readFileSync(file, "utf8")).toBe(`${pam.knownHostsLine}\n`);
      expect(statSync(file).mode & 0o777).toBe(0o600);
      const again = await new Ssh2Transport(base(pam, { knownHostsFile: file })).connect(targetOf(pam));
      await again.close();
      expect(readFileSync(file, "utf8").split("\n").filter(Boolean)).toHaveLength(1);
    });

    it("accept-new still refuses a changed key", async () => {
      const file = join(scratch, "accept_new_changed");
      writeFileSync(file, `[${pam.host}]:${pam.port} ${OTHER_KEY}\n`);
      await expect(new Ssh2Transport(base(pam, { knownHostsFile: file, hostKeyChecking: "accept-new" })).connect(targetOf(pam))).rejects.toMatchObject({
        code: "HOST_KEY",
      });
    });
  });

  describe("authentication", () => {
    it("logs in with a password (no key, no agent)", async () => {
      const user = plain.users.plain;
      const transport = new Ssh2Transport({ knownHostsFile: plain.knownHostsPath, configFile: false, agent: false, password: user.password });
      const connection = await transport.connect({ host: plain.host, port: plain.port, user: user.name });
      expect((await run(connection, "echo password-ok")).stdout).toBe("password-ok\n");
      await connection.close();
      expect(readFileSync(plain.logPath, "utf8")).toMatch(new RegExp(`Accepted password for ${user.name}`));
    });

    it("logs in with keyboard-interactive answered with the password", async () => {
      const user = pam.users.plain;
      const transport = new Ssh2Transport({ knownHostsFile: pam.knownHostsPath, configFile: false, agent: false, password: user.password });
      const connection = await transport.connect({ host: pam.host, port: pam.port, user: user.name });
      expect((await run(connection, "echo kbd-ok")).stdout).toBe("kbd-ok\n");
      await connection.close();
      expect(readFileSync(pam.logPath, "utf8")).toMatch(new RegExp(`Accepted keyboard-interactive/pam for ${user.name}`));
    });

    it("a wrong password is an AuthenticationError that never shows the password", async () => {
      const secret = `wrong-${randomBytes(6).toString("hex")}`;
      const transport = new Ssh2Transport({ knownHostsFile: plain.knownHostsPath, configFile: false, agent: false, password: secret });
      const error = await transport.connect({ host: plain.host, port: plain.port, user: plain.users.plain.name }).catch((caught: unknown) => caught);
      expect(error).toMatchObject({ name: "AuthenticationError", code: "AUTHENTICATION", retryable: false });
      expect(JSON.stringify(error)).not.toContain(secret);
      expect(String((error as Error).message)).not.toContain(secret);
    });
  });

  it("connects through a jump host (ProxyJump), verifying both host keys", async () => {
    const knownHosts = [pam.knownHostsPath, plain.knownHostsPath];
    const jump = `${plain.users.plain.name}@${plain.host}:${plain.port}`;
    const transport = new Ssh2Transport(base(pam, { knownHostsFile: knownHosts, proxyJump: jump }));
    const before = (readFileSync(plain.logPath, "utf8").match(/Accepted publickey/g) ?? []).length;
    const connection = await transport.connect(targetOf(pam));
    expect((await run(connection, "echo via-jump")).stdout).toBe("via-jump\n");
    expect((readFileSync(plain.logPath, "utf8").match(/Accepted publickey/g) ?? []).length).toBe(before + 1);
    expect(socketsTo(plain.port)).toHaveLength(1); // the only TCP socket goes to the jump host
    expect(socketsTo(pam.port)).toHaveLength(0);
    await connection.close();
    expect(socketsTo(plain.port)).toHaveLength(0);

    // The jump host's key is checked too: without it in known_hosts the connect is refused.
    const unverified = new Ssh2Transport(base(pam, { knownHostsFile: [pam.knownHostsPath], proxyJump: jump }));
    await expect(unverified.connect(targetOf(pam))).rejects.toMatchObject({ code: "HOST_KEY", target: { port: plain.port } });
  });

  it("detects a black-holed link by its unanswered keepalives", async () => {
    const proxy = await startFaultProxy({ target: { host: pam.host, port: pam.port } });
    try {
      const knownHosts = join(scratch, "proxy_known_hosts");
      writeFileSync(knownHosts, `[127.0.0.1]:${proxy.port} ${pam.hostPublicKey}\n`);
      const transport = new Ssh2Transport(base(pam, { knownHostsFile: knownHosts, keepaliveInterval: 500, keepaliveCountMax: 3 }));
      const connection = await transport.connect({ host: "127.0.0.1", port: proxy.port, user: pam.users.plain.name });
      const lost = new Promise<unknown>((resolve) => connection.onClose(resolve));
      const sleeper: RemoteProcess = connection.spawn({ command: "sleep 30" });
      sleeper.stdin.end();
      sleeper.stdout.resume();
      sleeper.stderr.resume();
      await sleeper.started;
      proxy.blackhole();
      // Nothing crosses a black hole, so only the keepalives can end the wait: the error says they went unanswered.
      const error = await sleeper.exit.catch((caught: unknown) => caught);
      expect(error).toMatchObject({ code: "CONNECTION_LOST", retryable: true });
      expect((error as Error).message).toMatch(/keepalive/);
      await expect(lost).resolves.toMatchObject({ code: "CONNECTION_LOST" });
      expect(connection.closed).toBe(true);
      await expect(connection.ping()).rejects.toMatchObject({ code: "CONNECTION_LOST" });
    } finally {
      await proxy.close();
    }
  });

  it.each([
    ["reset (RST)", "reset"],
    ["closed (FIN)", "fin"],
  ] as const)("a link %s mid-command fails the running command with CONNECTION_LOST at once", async (_name, fault) => {
    const proxy = await startFaultProxy({ target: { host: pam.host, port: pam.port } });
    try {
      const knownHosts = join(scratch, `proxy_known_hosts_${fault}`);
      writeFileSync(knownHosts, `[127.0.0.1]:${proxy.port} ${pam.hostPublicKey}\n`);
      const connection = await new Ssh2Transport(base(pam, { knownHostsFile: knownHosts })).connect({
        host: "127.0.0.1",
        port: proxy.port,
        user: pam.users.plain.name,
      });
      const sleeper = connection.spawn({ command: "sleep 30" });
      sleeper.stdin.end();
      await sleeper.started;
      proxy[fault]();
      // No keepalive is configured here: the loss is seen from the socket's own events, not a timer.
      const error = await sleeper.exit.catch((caught: unknown) => caught);
      expect(error).toMatchObject({ code: "CONNECTION_LOST", retryable: true });
      expect((error as Error).message).not.toMatch(/keepalive/);
      expect(connection.closed).toBe(true);
    } finally {
      await proxy.close();
    }
  });

  it.each(["upload", "download"] as const)("an SFTP %s cut by a reset settles with CONNECTION_LOST and releases its file", async (direction) => {
    const proxy = await startFaultProxy({ target: { host: pam.host, port: pam.port } });
    try {
      const knownHosts = join(scratch, `proxy_known_hosts_sftp_${direction}`);
      writeFileSync(knownHosts, `[127.0.0.1]:${proxy.port} ${pam.hostPublicKey}\n`);
      const connection = await new Ssh2Transport(base(pam, { knownHostsFile: knownHosts })).connect({
        host: "127.0.0.1",
        port: proxy.port,
        user: pam.users.plain.name,
      });
      const local = join(scratch, `reset-${direction}`);
      const remote = `/home/${pam.users.plain.name}/tunnel-reset-${direction}`;
      writeFileSync(local, randomBytes(48 * 1024 * 1024));
      if (direction === "download") await connection.upload({ localPath: local, remotePath: remote });
      let cut = false;
      const onProgress = (event: { bytes: number }) => {
        if (!cut && event.bytes > 4 * 1024 * 1024) {
          cut = true;
          proxy.reset();
        }
      };
      const transfer =
        direction === "upload"
          ? connection.upload({ localPath: local, remotePath: remote, onProgress })
          : connection.download({ remotePath: remote, localPath: `${local}.back`, onProgress });
      await expect(transfer).rejects.toMatchObject({ code: "CONNECTION_LOST" });
      expect(cut).toBe(true);
      rmSync(remote, { force: true });
    } finally {
      await proxy.close();
    }
  });

  it("a command whose channel the server has not opened yet settles at once on abort and on timeout; the late channels are killed", async () => {
    const proxy = await startFaultProxy({ target: { host: pam.host, port: pam.port } });
    try {
      const knownHosts = join(scratch, "proxy_known_hosts_stalled_open");
      writeFileSync(knownHosts, `[127.0.0.1]:${proxy.port} ${pam.hostPublicKey}\n`);
      const user = pam.users.plain.name;
      const connection = await new Ssh2Transport(base(pam, { knownHostsFile: knownHosts })).connect({ host: "127.0.0.1", port: proxy.port, user });
      // Durations of their own name the two commands in the process table, whatever else runs as this user.
      const token = randomBytes(4).readUInt32BE(0);
      const marks = [`sleep 3000.${token}`, `sleep 3001.${token}`];
      // The server gets no channel open until resume(): both wait for an answer that does not come.
      proxy.pause();
      const controller = new AbortController();
      const aborted = runProcess(connection, { command: marks[0] as string, signal: controller.signal });
      const timedOut = runProcess(connection, { command: marks[1] as string, timeoutMs: 300 });
      await expect(timedOut).rejects.toMatchObject({ name: "TimeoutError", code: "TIMEOUT" });
      controller.abort();
      await expect(aborted).rejects.toMatchObject({ name: "AbortError", code: "ABORTED" });
      expect(connection.closed).toBe(false);

      // The server now opens both channels and starts both commands: the transport kills and closes them.
      proxy.resume();
      expect((await run(connection, "echo after-stall")).stdout).toBe("after-stall\n");
      const running = async () => (await remoteProcesses(user)).filter((entry) => marks.some((mark) => entry.args.includes(mark)));
      while ((await running()).length > 0) await new Promise((resolve) => setTimeout(resolve, 20));
      expect(await running()).toEqual([]);
      await connection.close();
    } finally {
      await proxy.close();
    }
  });

  it("a refused TCP connect is a retryable ConnectError", async () => {
    const closedPort = await new Promise<number>((resolve) => {
      const server = createServer().listen(0, "127.0.0.1", () => {
        const address = server.address();
        server.close(() => resolve(typeof address === "object" && address ? address.port : 0));
      });
    });
    await expect(new Ssh2Transport(base(pam)).connect({ host: "127.0.0.1", port: closedPort, user: "nobody" })).rejects.toMatchObject({
      name: "ConnectError",
      code: "CONNECT",
      retryable: true,
    });
  });

  it("a server that never answers the handshake is one retryable timeout; an abort ends the wait at once", async () => {
    const proxy = await startFaultProxy({ target: { host: pam.host, port: pam.port } });
    try {
      proxy.blackhole();
      // Two connects at once: readyTimeout 1 s, and one with an hour that only an abort can end.
      const controller = new AbortController();
      let longSettled = false;
      const pending = new Ssh2Transport(base(pam, { readyTimeout: 3_600_000 }))
        .connect({ host: "127.0.0.1", port: proxy.port, user: "nobody" }, { signal: controller.signal })
        .finally(() => (longSettled = true));
      const transport = new Ssh2Transport(base(pam, { readyTimeout: 1000 }));
      const startedAt = performance.now();
      const error = await transport.connect({ host: "127.0.0.1", port: proxy.port, user: "nobody" }).catch((caught: unknown) => caught);
      expect(error).toMatchObject({ name: "ConnectError", code: "CONNECT", retryable: true });
      expect((error as Error).message).toMatch(/timed out/);
      // Its own readyTimeout ended it (a lower bound: a busy machine only adds to it), and not the other's.
      expect(performance.now() - startedAt).toBeGreaterThanOrEqual(990);
      expect(longSettled).toBe(false);

      controller.abort();
      await expect(pending).rejects.toMatchObject({ code: "ABORTED" });
      await until(() => socketsTo(proxy.port).length === 0);
      expect(socketsTo(proxy.port)).toHaveLength(0);
    } finally {
      await proxy.close();
    }
  });

  it("close() leaves no socket open, and ping() answers while open", async () => {
    const connection = await new Ssh2Transport(base(pam)).connect(targetOf(pam));
    await connection.ping();
    expect(socketsTo(pam.port)).toHaveLength(1);
    await connection.close();
    await connection.close();
    expect(socketsTo(pam.port)).toHaveLength(0);
  });

  describe("SFTP transfers", () => {
    let connection: Connection;
    beforeAll(async () => {
      connection = await new Ssh2Transport(base(pam, { transfer: { progressIntervalMs: 0 } })).connect({
        host: pam.host,
        port: pam.port,
        user: pam.users.plain.name,
      });
    });
    afterAll(async () => {
      await connection?.close();
    });
    const home = () => `/home/${pam.users.plain.name}`;

    it.each([0, 1, 3 * 1024 * 1024 + 17])("round-trips %i bytes byte-identically with monotonic progress ending at the size", async (size) => {
      const source = join(scratch, `up-${size}`);
      const back = join(scratch, `down-${size}`);
      const data = randomBytes(size);
      writeFileSync(source, data);
      const remote = `${home()}/tunnel-sftp-${size}-${randomBytes(4).toString("hex")}`;
      const progress: Progress[] = [];
      await connection.upload({ localPath: source, remotePath: remote, mode: 0o640, onProgress: (event) => progress.push(event) });
      await connection.download({ remotePath: remote, localPath: back });
      expect(readFileSync(back).equals(data)).toBe(true);
      expect(progress.at(-1)).toMatchObject({ bytes: size, total: size });
      for (let index = 1; index < progress.length; index++) {
        expect(progress[index]!.bytes).toBeGreaterThanOrEqual(progress[index - 1]!.bytes);
      }
      const mode = await run(connection, `stat -c %a ${remote}; rm -f ${remote}`);
      expect(mode.stdout).toBe("640\n");
    });

    it("hands a download's bytes to onData in file order, each once, with many reads in flight", async () => {
      // Small reads, many at once: 4 KiB × 64 in flight over a 2 MiB file, so replies may outrun their turn.
      const tuned = await new Ssh2Transport(base(pam, { transfer: { chunkSize: 4096, concurrency: 64 } })).connect(targetOf(pam));
      try {
        const data = randomBytes(2 * 1024 * 1024 + 5);
        const source = join(scratch, "ordered-up");
        writeFileSync(source, data);
        const remote = `${home()}/tunnel-ordered-${randomBytes(4).toString("hex")}`;
        await tuned.upload({ localPath: source, remotePath: remote });
        const chunks: Buffer[] = [];
        await tuned.download({ remotePath: remote, localPath: join(scratch, "ordered-down"), onData: (chunk) => chunks.push(Buffer.from(chunk)) });
        expect(Buffer.concat(chunks).equals(data)).toBe(true);
        expect(readFileSync(join(scratch, "ordered-down")).equals(data)).toBe(true);
        await run(tuned, `rm -f ${remote}`);
      } finally {
        await tuned.close();
      }
    });

    it("reports a missing remote file as TransferError and the connection stays usable", async () => {
      await expect(connection.download({ remotePath: `${home()}/no-such-file`, localPath: join(scratch, "never") })).rejects.toMatchObject({
        name: "TransferError",
        code: "TRANSFER",
      });
      expect((await run(connection, "echo still-here")).stdout).toBe("still-here\n");
    });

    it("stops a transfer when its signal aborts, with AbortError", async () => {
      const source = join(scratch, "abort-source");
      writeFileSync(source, randomBytes(32 * 1024 * 1024));
      const controller = new AbortController();
      const upload = connection.upload({
        localPath: source,
        remotePath: `${home()}/tunnel-abort`,
        signal: controller.signal,
        onProgress: (event) => event.bytes > 1024 * 1024 && controller.abort(),
      });
      await expect(upload).rejects.toMatchObject({ code: "ABORTED" });
      await run(connection, `rm -f ${home()}/tunnel-abort`);
    });
  });
});

describe("channel refusal on a MaxSessions 2 server", () => {
  let sshd: Sshd;
  beforeAll(async () => {
    sshd = await startSshd({ maxSessions: 2 });
  });
  afterAll(async () => {
    await sshd?.stop();
  });

  it("a third concurrent command is a refused ChannelError and the connection still works", async () => {
    // maxChannels matches the server, as it should; the third command goes past it on purpose.
    const connection = await new Ssh2Transport(base(sshd, { maxChannels: 2 })).connect(targetOf(sshd));
    const running = [connection.spawn({ command: "sleep 1" }), connection.spawn({ command: "sleep 1" })];
    for (const process of running) {
      process.stdin.end();
      process.stdout.resume();
      process.stderr.resume();
    }
    await Promise.all(running.map((process) => process.started));
    const third = connection.spawn({ command: "echo never" });
    await expect(third.started).rejects.toMatchObject({ name: "ChannelError", code: "CHANNEL", refused: true, retryable: true });
    await expect(third.exit).rejects.toMatchObject({ code: "CHANNEL" });
    await Promise.all(running.map((process) => process.exit));
    expect(connection.closed).toBe(false);
    expect((await run(connection, "echo after-refusal")).stdout).toBe("after-refusal\n");
    await connection.close();
  });

  it("keeps maxChannels commands in flight back to back without a single refusal", async () => {
    // sshd frees a closed session's slot a little after the close; an open sent at once would be refused.
    const connection = await new Ssh2Transport(base(sshd, { maxChannels: 2 })).connect(targetOf(sshd));
    const failures: unknown[] = [];
    const lane = async (): Promise<void> => {
      for (let index = 0; index < 20; index++) {
        const process = connection.spawn({ command: "true" });
        process.stdin.end();
        process.stdout.resume();
        process.stderr.resume();
        await process.exit.catch((error: unknown) => failures.push(error));
      }
    };
    await Promise.all([lane(), lane()]);
    expect(failures).toEqual([]);
    await connection.close();
  });

  it("reuses an idle SFTP session for back-to-back transfers, and gives its channel back when execs need it", async () => {
    const connection = await new Ssh2Transport(base(sshd, { maxChannels: 2, transfer: { sftpIdleMs: 60_000 } })).connect(targetOf(sshd));
    const source = join(mkdtempSync(join(tmpdir(), "tunnel-ssh2-sftp-")), "file");
    writeFileSync(source, "payload");
    const subsystemRequests = () => (readFileSync(sshd.logPath, "utf8").match(/Starting session: subsystem 'sftp'/g) ?? []).length;
    const before = subsystemRequests();
    const remote = `/home/${sshd.users.plain.name}/tunnel-reuse`;
    await connection.upload({ localPath: source, remotePath: remote });
    await connection.upload({ localPath: source, remotePath: remote });
    expect(subsystemRequests()).toBe(before + 1);
    // The idle session holds one of the server's two sessions; two execs (the pool's whole budget) still both start.
    const both = [connection.spawn({ command: "sleep 0.3" }), connection.spawn({ command: "sleep 0.3" })];
    for (const process of both) {
      process.stdin.end();
      process.stdout.resume();
      process.stderr.resume();
    }
    await Promise.all(both.map((process) => process.started));
    await expect(Promise.all(both.map((process) => process.exit))).resolves.toEqual([
      { exitCode: 0, signal: null },
      { exitCode: 0, signal: null },
    ]);
    await run(connection, `rm -f ${remote}`);
    await connection.close();
  });
});

describe("transfers on a server without SFTP", () => {
  let sshd: Sshd;
  let scratch: string;
  beforeAll(async () => {
    sshd = await startSshd({ sftp: false });
    scratch = mkdtempSync(join(tmpdir(), "tunnel-ssh2-nosftp-"));
  });
  afterAll(async () => {
    await sshd?.stop();
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  });

  it("moves the bytes over exec channels, handing a download's bytes to onData in order", async () => {
    const connection = await new Ssh2Transport(base(sshd)).connect(targetOf(sshd));
    try {
      const data = randomBytes(1024 * 1024 + 3);
      writeFileSync(join(scratch, "up"), data);
      const remote = `/home/${sshd.users.plain.name}/tunnel-exec-${randomBytes(4).toString("hex")}`;
      await connection.upload({ localPath: join(scratch, "up"), remotePath: remote });
      const chunks: Buffer[] = [];
      await connection.download({ remotePath: remote, localPath: join(scratch, "down"), onData: (chunk) => chunks.push(Buffer.from(chunk)) });
      expect(Buffer.concat(chunks).equals(data)).toBe(true);
      expect(readFileSync(join(scratch, "down")).equals(data)).toBe(true);
      expect(readFileSync(sshd.logPath, "utf8")).not.toMatch(/Starting session: subsystem 'sftp'/);
      await run(connection, `rm -f ${remote}`);
    } finally {
      await connection.close();
    }
  });
});
