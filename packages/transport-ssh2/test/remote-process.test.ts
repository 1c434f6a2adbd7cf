import { once } from "node:events";
import type { Connection } from "@tunnel-sh/core";
import { describe, expect, it } from "vitest";
import { Ssh2Transport } from "../src/index.js";
import { FakeClient } from "./fake-client.js";

// The first hop's TCP socket goes to a loopback port nobody listens on; the fake client ignores it.
const target = { host: "127.0.0.1", port: 1, user: "deploy" };

async function connectFake(client = new FakeClient(), options: { killGraceMs?: number } = {}) {
  const transport = new Ssh2Transport({
    createClient: () => client.asClient(),
    configFile: false,
    agent: false,
    hostKeyChecking: "insecure-accept-any",
    ...options,
  });
  const connection = await transport.connect(target);
  return { client, connection };
}

function collect(stream: NodeJS.ReadableStream): () => string {
  let text = "";
  stream.on("data", (chunk) => (text += chunk));
  return () => text;
}

/** The connection is open and runs the next command to its end. */
async function expectUsable(client: FakeClient, connection: Connection): Promise<void> {
  expect(connection.closed).toBe(false);
  const next = connection.spawn({ command: "true" });
  next.stdout.resume();
  (await client.open()).finish(0);
  await expect(next.exit).resolves.toEqual({ exitCode: 0, signal: null });
}

/** A running `sleep` its caller aborted: returned once the abort sent TERM on the channel. */
async function abortedProcess(options: { killGraceMs?: number } = {}) {
  const { client, connection } = await connectFake(new FakeClient(), options);
  const controller = new AbortController();
  const process = connection.spawn({ command: "sleep 9", signal: controller.signal });
  process.stdout.resume();
  const channel = await client.open();
  await process.started;
  controller.abort();
  expect(channel.signals).toEqual(["TERM"]);
  return { connection, channel, process };
}

describe("spawn on a fake ssh2 client", () => {
  it("streams output and resolves the exit code", async () => {
    const { client, connection } = await connectFake();
    const process = connection.spawn({ command: "echo hi" });
    const stdout = collect(process.stdout);
    const channel = await client.open();
    await process.started;
    channel.push("hi\n");
    channel.finish(0);
    await expect(process.exit).resolves.toEqual({ exitCode: 0, signal: null });
    expect(stdout()).toBe("hi\n");
  });

  it("holds the channel back while nobody reads stdout, and hands every byte over in order once read", async () => {
    const { client, connection } = await connectFake();
    const process = connection.spawn({ command: "cat big" });
    process.stderr.resume();
    const channel = await client.open();
    await process.started;
    for (let index = 0; index < 8; index++) channel.push(Buffer.alloc(64 * 1024, index));
    await new Promise((resolve) => setImmediate(resolve));
    expect(channel.isPaused()).toBe(true);
    channel.finish(0);
    const parts: Buffer[] = [];
    for await (const part of process.stdout) parts.push(part as Buffer);
    const all = Buffer.concat(parts);
    expect(all.length).toBe(8 * 64 * 1024);
    for (let index = 0; index < 8; index++) expect(all[index * 64 * 1024]).toBe(index);
    await expect(process.exit).resolves.toEqual({ exitCode: 0, signal: null });
  });

  it.each([["TERM"], ["SIGTERM"]])("normalises the exit signal %s to SIGTERM", async (name) => {
    const { client, connection } = await connectFake();
    const process = connection.spawn({ command: "sleep 9" });
    process.stdout.resume();
    const channel = await client.open();
    channel.finish(null, name);
    await expect(process.exit).resolves.toEqual({ exitCode: null, signal: "SIGTERM" });
  });

  it("sends stdin end as EOF only, so a later kill still reaches the process", async () => {
    const { client, connection } = await connectFake();
    const process = connection.spawn({ command: "cat" });
    process.stdout.resume();
    process.stdin.end("data");
    const channel = await client.open();
    await once(process.stdin, "finish");
    expect(Buffer.concat(channel.written).toString()).toBe("data");
    expect(channel.eofSent).toBe(true);
    expect(channel.outgoing.state).toBe("eof");
    await process.kill("SIGINT");
    // The fake has no protocol object; a real channel in state "eof" gets the request through the protocol.
    channel.finish(null, "INT");
    await expect(process.exit).resolves.toEqual({ exitCode: null, signal: "SIGINT" });
  });

  it("rejects an unknown signal name with a ValidationError", async () => {
    const { client, connection } = await connectFake();
    const process = connection.spawn({ command: "sleep 9" });
    await client.open();
    await expect(process.kill("SIGWHATEVER")).rejects.toMatchObject({ code: "VALIDATION" });
  });

  it("maps a channel-open failure to a refused ChannelError, rejects started, and keeps the connection usable", async () => {
    const { client, connection } = await connectFake();
    const refused = connection.spawn({ command: "true" });
    await client.open(Object.assign(new Error("(SSH) Channel open failure: open failed"), { reason: 2 }));
    await expect(refused.started).rejects.toMatchObject({ name: "ChannelError", code: "CHANNEL", refused: true, retryable: true });
    await expect(refused.exit).rejects.toMatchObject({ code: "CHANNEL" });
    await expectUsable(client, connection);
  });

  it("fails every pending process with CONNECTION_LOST when the client closes, even if nobody reads its output", async () => {
    const { client, connection } = await connectFake();
    const running = connection.spawn({ command: "sleep 9" });
    const opening = connection.spawn({ command: "sleep 9" });
    const channel = await client.open();
    channel.push(Buffer.alloc(1024)); // unread output
    const closed = new Promise((resolve) => connection.onClose(resolve));
    client.drop();
    await expect(running.exit).rejects.toMatchObject({ code: "CONNECTION_LOST", retryable: true });
    await expect(opening.started).rejects.toMatchObject({ code: "CONNECTION_LOST" });
    await expect(closed).resolves.toMatchObject({ code: "CONNECTION_LOST" });
    expect(connection.closed).toBe(true);
  });

  it("never throws synchronously after the connection is gone", async () => {
    const { client, connection } = await connectFake();
    client.connected = false; // ssh2 now throws "Not connected" from exec()
    const process = connection.spawn({ command: "true" });
    await expect(process.exit).rejects.toMatchObject({ code: "CONNECTION_LOST" });
    client.connected = true;
    client.drop();
    await new Promise((resolve) => connection.onClose(resolve));
    const late = connection.spawn({ command: "true" });
    await expect(late.started).rejects.toMatchObject({ code: "CONNECTION_LOST" });
  });

  it("settles exactly once: a close after the exit changes nothing", async () => {
    const { client, connection } = await connectFake();
    const process = connection.spawn({ command: "true" });
    process.stdout.resume();
    const channel = await client.open();
    channel.finish(7);
    await expect(process.exit).resolves.toEqual({ exitCode: 7, signal: null });
    client.drop();
    await new Promise((resolve) => connection.onClose(resolve));
    await expect(process.exit).resolves.toEqual({ exitCode: 7, signal: null });
  });

  it("aborting sends TERM and rejects with AbortError once the channel closes", async () => {
    const { connection, channel, process } = await abortedProcess();
    channel.finish(null, "TERM");
    await expect(process.exit).rejects.toMatchObject({ name: "AbortError", code: "ABORTED" });
    expect(connection.closed).toBe(false);
  });

  it("an abort while the server has not answered the channel open settles at once; the late channel is killed and closed", async () => {
    const { client, connection } = await connectFake(new FakeClient(), { killGraceMs: 10 });
    const controller = new AbortController();
    const process = connection.spawn({ command: "sleep 9", signal: controller.signal });
    process.stdin.end();
    await new Promise((resolve) => setImmediate(resolve));
    expect(client.execs).toHaveLength(1); // the exec request went out; the server never answered it
    controller.abort();
    await expect(process.started).rejects.toMatchObject({ name: "AbortError", code: "ABORTED" });
    await expect(process.exit).rejects.toMatchObject({ name: "AbortError", code: "ABORTED" });
    const late = await client.open();
    // The same escalation as an abort: the fake's command never ends, so TERM, KILL, then the channel is closed.
    while (late.outgoing.state !== "closed") await new Promise((resolve) => setTimeout(resolve, 5));
    expect(late.signals).toEqual(["TERM", "KILL"]);
    await expectUsable(client, connection);
  });

  it("a channel the server may still open keeps its slot until it has answered", async () => {
    const { client, connection } = await connectFake(new FakeClient());
    const controllers = Array.from({ length: connection.maxChannels }, () => new AbortController());
    const stalled = controllers.map((controller) => connection.spawn({ command: "sleep 9", signal: controller.signal }));
    await new Promise((resolve) => setImmediate(resolve));
    expect(client.execs).toHaveLength(connection.maxChannels);
    for (const controller of controllers) controller.abort();
    await Promise.all(stalled.map((process) => expect(process.exit).rejects.toMatchObject({ code: "ABORTED" })));
    // The server still holds every one of those opens: one more would be past maxChannels, so it waits.
    const next = connection.spawn({ command: "true" });
    next.stdout.resume();
    next.stdin.end();
    await new Promise((resolve) => setImmediate(resolve));
    expect(client.execs).toHaveLength(connection.maxChannels);
    for (let index = 0; index < connection.maxChannels; index++) await client.open();
    while (client.execs.length === 0) await new Promise((resolve) => setImmediate(resolve));
    (await client.open()).finish(0);
    await expect(next.exit).resolves.toEqual({ exitCode: 0, signal: null });
  });

  it("an abort sends TERM, KILL after killGraceMs, and gives up on a channel that never closes after another killGraceMs", async () => {
    const { connection, channel, process } = await abortedProcess({ killGraceMs: 20 });
    await expect(process.exit).rejects.toMatchObject({ name: "AbortError", code: "ABORTED" });
    expect(channel.signals).toEqual(["TERM", "KILL"]);
    expect(channel.outgoing.state).toBe("closed");
    expect(connection.closed).toBe(false);
  });

  it("an already aborted signal never opens a channel", async () => {
    const { client, connection } = await connectFake();
    const process = connection.spawn({ command: "true", signal: AbortSignal.abort() });
    await expect(process.exit).rejects.toMatchObject({ code: "ABORTED" });
    expect(client.execs).toHaveLength(0);
  });

  it("passes pty options to ssh2", async () => {
    const { client, connection } = await connectFake();
    connection.spawn({ command: "tty", pty: { rows: 40, cols: 100 } });
    await new Promise((resolve) => process.nextTick(resolve));
    expect(client.execs[0]?.options).toEqual({ pty: { term: "xterm", rows: 40, cols: 100 } });
  });

  it("close() is idempotent and reports no error to onClose listeners", async () => {
    const { connection } = await connectFake();
    const reasons: unknown[] = [];
    connection.onClose((error) => reasons.push(error));
    await connection.close();
    await connection.close();
    expect(reasons).toEqual([undefined]);
    expect(connection.closed).toBe(true);
  });
});

describe("connect on a fake ssh2 client", () => {
  it("reports a handshake timeout once although ssh2 emits two errors", async () => {
    const client = new FakeClient();
    client.onConnect = (fake) =>
      queueMicrotask(() => {
        fake.emit("error", Object.assign(new Error("Timed out while waiting for handshake"), { level: "client-timeout" }));
        fake.emit("error", Object.assign(new Error("Connection lost before handshake"), { level: "protocol" }));
        fake.emit("close");
      });
    const transport = new Ssh2Transport({ createClient: () => client.asClient(), configFile: false, agent: false });
    const error = await transport.connect(target).catch((caught: unknown) => caught);
    expect(error).toMatchObject({ name: "ConnectError", code: "CONNECT", retryable: true });
    expect((error as Error).message).toMatch(/timed out/);
  });

  it("turns an abort during the handshake into AbortError and destroys the client", async () => {
    const client = new FakeClient();
    client.onConnect = () => {};
    const transport = new Ssh2Transport({ createClient: () => client.asClient(), configFile: false, agent: false });
    const controller = new AbortController();
    const pending = transport.connect(target, { signal: controller.signal });
    await new Promise((resolve) => setTimeout(resolve, 10));
    controller.abort();
    await expect(pending).rejects.toMatchObject({ code: "ABORTED" });
    expect(client.connected).toBe(false);
  });

  it("passes keepalive, the rest of the connect's readyTimeout and the resolved user to ssh2", async () => {
    const { client } = await connectFake();
    expect(client.config).toMatchObject({ username: "deploy", keepaliveInterval: 15_000, keepaliveCountMax: 3 });
    // What is left of the default readyTimeout (connectTimeout 10 000 + 20 000) for this hop.
    expect(client.config?.readyTimeout).toBeGreaterThan(0);
    expect(client.config?.readyTimeout).toBeLessThanOrEqual(30_000);
  });
});
