import { chmod, mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { AuthenticationError, ChannelError, ConnectError, TunnelError, hasCode, runProcess, type TunnelError as TunnelErrorType } from "@tunnel-sh/core";
import { FakeScriptError, FakeTransport, localFileCopy, type FakeConnection } from "@tunnel-sh/testing";

const target = { host: "web-1", user: "deploy", port: 22 };

async function connectFake(transport: FakeTransport): Promise<FakeConnection> {
  await transport.connect(target);
  return transport.connections.at(-1) as FakeConnection;
}

describe("FakeTransport connect", () => {
  it("succeeds by default with a connection that has the target, 10 channels and every capability", async () => {
    const transport = new FakeTransport();
    const connection = await transport.connect(target);
    expect(transport.name).toBe("fake");
    expect(connection).toBe(transport.connections[0]);
    expect(connection).toMatchObject({ transport: "fake", target, maxChannels: 10, closed: false });
    expect(connection.capabilities).toEqual({ pty: true, signals: true, transfer: true });
    expect(transport.calls).toEqual([{ type: "connect", target }]);
  });

  it("follows a queue of outcomes, one per connect, and fails clearly once it is used up", async () => {
    const refused = new ConnectError("connection refused");
    const transport = new FakeTransport({ connect: [{ error: refused }, { maxChannels: 2 }] });
    await expect(transport.connect(target)).rejects.toBe(refused);
    expect((await transport.connect(target)).maxChannels).toBe(2);
    const error = await transport.connect(target).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(FakeScriptError);
    expect((error as Error).message).toContain("connect(deploy@web-1:22)");
    expect(transport.connections).toHaveLength(1);
  });

  it("asks a function with the target and the attempt number", async () => {
    const seen: Array<[string, number]> = [];
    const transport = new FakeTransport({
      connect: (to, attempt) => {
        seen.push([to.host, attempt]);
        return attempt === 1 ? { error: new AuthenticationError("denied") } : { capabilities: { pty: false } };
      },
    });
    await expect(transport.connect(target)).rejects.toMatchObject({ code: "AUTHENTICATION" });
    expect((await transport.connect({ host: "web-2" })).capabilities.pty).toBe(false);
    expect(seen).toEqual([
      ["web-1", 1],
      ["web-2", 2],
    ]);
  });

  it("waits a scripted delay and rejects with AbortError when the signal aborts during it", async () => {
    // An hour: only the abort can end the wait within the test's timeout.
    const transport = new FakeTransport({ connect: { delayMs: 3_600_000 } });
    const controller = new AbortController();
    const connecting = transport.connect(target, { signal: controller.signal });
    setTimeout(() => controller.abort(), 20);
    await expect(connecting).rejects.toMatchObject({ code: "ABORTED", phase: "connect" });
    await expect(transport.connect(target, { signal: AbortSignal.abort() })).rejects.toMatchObject({ code: "ABORTED" });
    expect(transport.connections).toHaveLength(0);
  });

  it("gives each transport its own copy of a queue", async () => {
    const options = { connect: [{}] };
    await new FakeTransport(options).connect(target);
    await expect(new FakeTransport(options).connect(target)).resolves.toBeDefined();
    expect(options.connect).toHaveLength(1);
  });

  it("has identity() only when one is given", () => {
    expect(new FakeTransport().identity).toBeUndefined();
    expect(new FakeTransport({ identity: (to) => `key:${to.host}` }).identity?.(target)).toBe("key:web-1");
  });
});

describe("FakeTransport spawn", () => {
  it("fails an unscripted spawn with an error naming the command", async () => {
    const connection = await connectFake(new FakeTransport());
    const remote = connection.spawn({ command: "uptime" });
    await expect(remote.started).rejects.toThrow(/spawn\("uptime"\)/);
    await expect(remote.exit).rejects.toBeInstanceOf(FakeScriptError);
  });

  it("plays a scripted result through core's runProcess", async () => {
    const transport = new FakeTransport({ spawn: { stdout: "out\n", stderr: "err\n", exitCode: 3 } });
    const connection = await connectFake(transport);
    const result = await runProcess(connection, { command: "make" });
    expect(result).toMatchObject({ exitCode: 3, signal: null, stdout: "out\n", stderr: "err\n", truncated: false });
    expect(transport.callsOf("spawn")).toEqual([{ type: "spawn", target, connection: 1, command: "make", pty: false }]);
  });

  it("takes one reply per call from a queue, or asks a function with the request and connection", async () => {
    const queued = await connectFake(new FakeTransport({ spawn: [{ stdout: "one" }, { stdout: "two", exitCode: 1 }] }));
    expect((await runProcess(queued, { command: "a" })).stdout).toBe("one");
    expect(await runProcess(queued, { command: "b" })).toMatchObject({ stdout: "two", exitCode: 1 });
    await expect(runProcess(queued, { command: "c" })).rejects.toThrow(/used up/);

    const computed = await connectFake(new FakeTransport({ spawn: (request, on) => ({ stdout: `${request.command} on ${on.id}` }) }));
    expect((await runProcess(computed, { command: "hostname" })).stdout).toBe("hostname on 1");
  });

  it("ends a process by a signal, or fails it at start or at exit", async () => {
    const connection = await connectFake(
      new FakeTransport({
        spawn: [
          { signal: "SIGKILL" },
          { error: new ChannelError("open failed") },
          { stdout: "partial", error: new ConnectError("lost", { lost: true }), errorAt: "exit" },
        ],
      }),
    );
    expect(await connection.spawn({ command: "a" }).exit).toEqual({ exitCode: null, signal: "SIGKILL" });
    const refused = connection.spawn({ command: "b" });
    await expect(refused.started).rejects.toMatchObject({ code: "CHANNEL" });
    await expect(refused.exit).rejects.toMatchObject({ code: "CHANNEL" });
    const lost = connection.spawn({ command: "c" });
    await expect(lost.started).resolves.toBeUndefined();
    await expect(lost.exit).rejects.toMatchObject({ code: "CONNECTION_LOST" });
  });

  it("ends a running process on kill() with the signal, and logs the kill", async () => {
    const transport = new FakeTransport({ spawn: { delayMs: 10_000, stdout: "never" } });
    const connection = await connectFake(transport);
    const remote = connection.spawn({ command: "sleep 10" });
    await remote.started;
    await remote.kill("KILL");
    expect(await remote.exit).toEqual({ exitCode: null, signal: "SIGKILL" });
    await remote.kill();
    expect(transport.callsOf("kill").map((call) => call.signal)).toEqual(["SIGKILL", "SIGTERM"]);
  });

  it("rejects exit with AbortError when the request's signal aborts, and counts it as a kill", async () => {
    const transport = new FakeTransport({ spawn: { delayMs: 10_000 } });
    const connection = await connectFake(transport);
    const controller = new AbortController();
    const remote = connection.spawn({ command: "sleep 10", signal: controller.signal });
    controller.abort();
    await expect(remote.exit).rejects.toMatchObject({ code: "ABORTED" });
    expect(transport.callsOf("kill")).toHaveLength(1);
    const early = connection.spawn({ command: "x", signal: AbortSignal.abort() });
    await expect(early.started).rejects.toMatchObject({ code: "ABORTED" });
  });

  it("refuses spawns past maxChannels, and the next ones when asked to", async () => {
    const connection = await connectFake(new FakeTransport({ maxChannels: 2, spawn: { delayMs: 50 } }));
    const first = connection.spawn({ command: "1" });
    const second = connection.spawn({ command: "2" });
    expect(connection.activeChannels).toBe(2);
    const third = connection.spawn({ command: "3" });
    const refusal = await third.started.catch((error: unknown) => error);
    expect(refusal).toBeInstanceOf(ChannelError);
    expect((refusal as ChannelError).refused).toBe(true);
    await Promise.all([first.exit, second.exit]);
    expect(connection.activeChannels).toBe(0);

    connection.refuseNextSpawns(1);
    await expect(connection.spawn({ command: "4" }).started).rejects.toMatchObject({ code: "CHANNEL", refused: true });
    await expect(connection.spawn({ command: "5" }).exit).resolves.toEqual({ exitCode: 0, signal: null });
  });

  it("settles exit only once output past the stream buffers is read, as a real channel does", async () => {
    const connection = await connectFake(new FakeTransport({ spawn: { stdout: "x".repeat(256 * 1024) } }));
    const remote = connection.spawn({ command: "big" });
    let settled = false;
    void remote.exit.then(() => (settled = true));
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(settled).toBe(false);
    remote.stdout.resume();
    remote.stderr.resume();
    expect(await remote.exit).toEqual({ exitCode: 0, signal: null });
  });

  it("runs a handler with live streams and tells it about kills", async () => {
    const kills: string[] = [];
    const connection = await connectFake(
      new FakeTransport({
        spawn: {
          run: (io) =>
            new Promise((resolve) => {
              io.onKill((signal) => {
                kills.push(signal);
                resolve({ exitCode: null, signal });
              });
              io.stdin.on("data", (chunk: Buffer) => io.stdout.write(chunk.toString().toUpperCase()));
              io.stdin.on("end", () => resolve({ exitCode: 0, signal: null }));
            }),
        },
      }),
    );
    expect(await runProcess(connection, { command: "upcase", stdin: "hello" })).toMatchObject({
      exitCode: 0,
      stdout: "HELLO",
    });
    const remote = connection.spawn({ command: "upcase" });
    await remote.started;
    await remote.kill("SIGINT");
    expect(await remote.exit).toEqual({ exitCode: null, signal: "SIGINT" });
    expect(kills).toEqual(["SIGINT"]);
  });
});

describe("FakeConnection lifecycle", () => {
  it("drop() rejects running processes with CONNECTION_LOST and tells onClose listeners", async () => {
    const connection = await connectFake(new FakeTransport({ spawn: { delayMs: 10_000 } }));
    const closes: Array<TunnelErrorType | undefined> = [];
    connection.onClose((error) => closes.push(error));
    const remote = connection.spawn({ command: "sleep 10" });
    await remote.started;
    connection.drop();
    await expect(remote.exit).rejects.toSatisfy((error) => hasCode(error, "CONNECTION_LOST"));
    expect(connection.closed).toBe(true);
    expect(closes).toHaveLength(1);
    expect(closes[0]?.code).toBe("CONNECTION_LOST");
    const after = connection.spawn({ command: "true" });
    await expect(after.started).rejects.toSatisfy((error) => TunnelError.is(error));
    await expect(connection.ping()).rejects.toMatchObject({ code: "CONNECTION_LOST" });
    connection.drop();
    expect(closes).toHaveLength(1);
  });

  it("drop(error) passes that error on", async () => {
    const connection = await connectFake(new FakeTransport({ spawn: { delayMs: 10_000 } }));
    const lost = new ConnectError("keepalive timeout", { lost: true });
    let seen: unknown;
    connection.onClose((error) => (seen = error));
    const remote = connection.spawn({ command: "sleep 10" });
    connection.drop(lost);
    await expect(remote.exit).rejects.toBe(lost);
    expect(seen).toBe(lost);
  });

  it("close() is idempotent, reports no error, and fails running processes with CONNECTION_LOST", async () => {
    const transport = new FakeTransport({ spawn: { delayMs: 10_000 } });
    const connection = await connectFake(transport);
    const closes: unknown[] = [];
    connection.onClose((error) => closes.push(error));
    const removed: unknown[] = [];
    connection.onClose((error) => removed.push(error))();
    const remote = connection.spawn({ command: "sleep 10" });
    await connection.close();
    await connection.close();
    await expect(remote.exit).rejects.toMatchObject({ code: "CONNECTION_LOST" });
    expect(closes).toEqual([undefined]);
    expect(removed).toEqual([]);
    expect(transport.callsOf("close")).toHaveLength(2);
  });

  it("pings as scripted, and a ping's signal aborts its delay", async () => {
    const transport = new FakeTransport({ ping: [{}, { error: new ConnectError("no answer", { lost: true }) }, { delayMs: 10_000 }] });
    const connection = await connectFake(transport);
    await expect(connection.ping()).resolves.toBeUndefined();
    await expect(connection.ping()).rejects.toMatchObject({ message: "no answer" });
    await expect(connection.ping({ signal: AbortSignal.timeout(20) })).rejects.toMatchObject({ code: "ABORTED" });
    expect(transport.callsOf("ping")).toHaveLength(3);
  });

  it("fails unscripted transfers, and copies files locally with localFileCopy", async () => {
    const unscripted = await connectFake(new FakeTransport());
    await expect(unscripted.upload({ localPath: "/a", remotePath: "/b" })).rejects.toThrow(/upload\("\/b"\)/);
    const dir = await mkdtemp(join(tmpdir(), "tunnel-fake-"));
    try {
      const transport = new FakeTransport({ upload: localFileCopy, download: localFileCopy });
      const connection = await connectFake(transport);
      await writeFile(join(dir, "source"), "payload");
      await connection.upload({ localPath: join(dir, "source"), remotePath: join(dir, "remote") });
      await connection.download({ remotePath: join(dir, "remote"), localPath: join(dir, "back") });
      expect(await readFile(join(dir, "back"), "utf8")).toBe("payload");
      expect(transport.calls.slice(1).map((call) => [call.type, call.remotePath])).toEqual([
        ["upload", join(dir, "remote")],
        ["download", join(dir, "remote")],
      ]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe("FakeTransport for pool tests", () => {
  it("holds a connect until the test settles it, and an abort rejects a held connect", async () => {
    const transport = new FakeTransport({ connect: [{ hold: true }, { hold: true }, { hold: true }] });
    const first = transport.connect(target);
    const second = transport.connect(target);
    const controller = new AbortController();
    const third = transport.connect(target, { signal: controller.signal });
    await new Promise((resolve) => setImmediate(resolve));
    expect(transport.held.map((held) => held.target)).toEqual([target, target, target]);
    expect(transport.connecting).toBe(3);
    transport.held[0]?.resolve({ maxChannels: 2 });
    expect((await first).maxChannels).toBe(2);
    const refused = new ConnectError("refused");
    transport.held[1]?.reject(refused);
    await expect(second).rejects.toBe(refused);
    controller.abort();
    await expect(third).rejects.toMatchObject({ code: "ABORTED", phase: "connect" });
    expect(transport.connecting).toBe(0);
    expect(transport.callsOf("connect")[2]?.abortSignal).toBe(controller.signal);
  });

  it("counts the most connections open or connecting at once, and lists the open ones", async () => {
    const transport = new FakeTransport();
    const [one, two] = await Promise.all([transport.connect(target), transport.connect(target)]);
    await one.close();
    await transport.connect(target);
    expect(transport.peak).toBe(2);
    expect(transport.openConnections()).toEqual([two, transport.connections[2]]);
  });

  it("refuses channels past maxSessions even below maxChannels, and tracks the peak of open channels", async () => {
    const transport = new FakeTransport({ maxChannels: 10, maxSessions: 2, spawn: { delayMs: 20 } });
    const connection = await connectFake(transport);
    const processes = [connection.spawn({ command: "a" }), connection.spawn({ command: "b" }), connection.spawn({ command: "c" })];
    for (const remote of processes) remote.stdin.end();
    await expect(processes[2]?.started).rejects.toMatchObject({ code: "CHANNEL", refused: true });
    await Promise.all(processes.slice(0, 2).map((remote) => remote.exit));
    expect(connection.peakChannels).toBe(2);
    expect(connection.maxChannels).toBe(10);
    expect(() => new FakeTransport({ maxSessions: 0 })).toThrow(/maxSessions/);
  });

  it("counts onClose listeners, and closeWithoutNotice() turns closed true without telling them", async () => {
    const connection = await connectFake(new FakeTransport());
    const heard: unknown[] = [];
    const stop = connection.onClose((error) => heard.push(error));
    connection.onClose((error) => heard.push(error));
    expect(connection.listenerCount).toBe(2);
    stop();
    expect(connection.listenerCount).toBe(1);
    connection.closeWithoutNotice();
    expect(connection.closed).toBe(true);
    expect(heard).toEqual([]);
  });

  it("records the connect span it was given", async () => {
    const transport = new FakeTransport();
    const span = { setAttributes() {}, addEvent() {}, recordError() {}, end() {} };
    await transport.connect(target, { span });
    expect(transport.callsOf("connect")[0]?.span).toBe(span);
  });
});

describe("localFileCopy", () => {
  it("applies the mode to a new file only, truncates an existing one, and reports progress up to the size", async () => {
    const dir = await mkdtemp(join(tmpdir(), "tunnel-fake-"));
    try {
      const connection = await connectFake(new FakeTransport({ upload: localFileCopy, download: localFileCopy }));
      const payload = Buffer.alloc(300_000, 7);
      await writeFile(join(dir, "source"), payload);
      const reports: number[] = [];
      await connection.upload({
        localPath: join(dir, "source"),
        remotePath: join(dir, "new"),
        mode: 0o600,
        onProgress: (progress) => reports.push(progress.bytes),
      });
      expect((await stat(join(dir, "new"))).mode & 0o777).toBe(0o600);
      expect(reports.length).toBeGreaterThan(1);
      expect(reports.at(-1)).toBe(payload.length);
      expect([...reports].sort((a, b) => a - b)).toEqual(reports);

      await writeFile(join(dir, "existing"), Buffer.alloc(500_000, 1), { mode: 0o640 });
      await chmod(join(dir, "existing"), 0o640);
      await connection.upload({ localPath: join(dir, "source"), remotePath: join(dir, "existing"), mode: 0o600 });
      expect((await stat(join(dir, "existing"))).mode & 0o777).toBe(0o640);
      expect((await readFile(join(dir, "existing"))).equals(payload)).toBe(true);

      await expect(connection.download({ remotePath: join(dir, "missing"), localPath: join(dir, "copy") })).rejects.toMatchObject({ code: "TRANSFER" });
      await expect(connection.upload({ localPath: join(dir, "source"), remotePath: join(dir, "copy"), signal: AbortSignal.abort() })).rejects.toMatchObject({
        code: "ABORTED",
      });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("is refused, without asking the script, by a connection that declares no transfers", async () => {
    const connection = await connectFake(new FakeTransport({ upload: localFileCopy, capabilities: { transfer: false } }));
    await expect(connection.upload({ localPath: "/dev/null", remotePath: "/tmp/never" })).rejects.toMatchObject({ code: "TRANSFER" });
  });
});
