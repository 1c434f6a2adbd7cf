import { setTimeout as sleep } from "node:timers/promises";
import type { Client } from "ssh2";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { startTestServer, type TestServer } from "@tunnel-sh/embedded-server";
import { closed, collect, connect, open, run, waitForOutput } from "./embedded-server-client.js";
import { alive } from "./local-processes.js";

async function timed<T>(work: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const started = performance.now();
  const value = await work();
  return { value, ms: performance.now() - started };
}

describe("the embedded server's fault hooks", () => {
  let server: TestServer;
  const clients: Client[] = [];
  const connectTracked = async (...args: Parameters<typeof connect>) => {
    const client = await connect(...args);
    clients.push(client);
    return client;
  };

  beforeAll(async () => {
    server = await startTestServer();
  });

  afterEach(() => {
    for (const key of Object.keys(server.faults)) delete server.faults[key as keyof typeof server.faults];
    for (const client of clients.splice(0)) client.end();
  });

  afterAll(async () => {
    await server?.close();
  });

  it("stallHandshake: accepts TCP but never sends the banner, so the client times out waiting for the handshake", async () => {
    server.faults.stallHandshake = true;
    const { value: error, ms } = await timed(() =>
      connect(server, { readyTimeout: 800 }).then(
        () => undefined,
        (failure: unknown) => failure,
      ),
    );
    expect(error).toMatchObject({ level: "client-timeout", message: "Timed out while waiting for handshake" });
    expect(ms).toBeGreaterThanOrEqual(750);
    server.faults.stallHandshake = false;
    expect(await run(await connectTracked(server), "echo after-stall")).toMatchObject({ code: 0, stdout: "after-stall\n" });
  });

  it("handshakeDelayMs: the handshake starts that much later, then succeeds", async () => {
    server.faults.handshakeDelayMs = 600;
    const { value: client, ms } = await timed(() => connectTracked(server));
    expect(ms).toBeGreaterThanOrEqual(580);
    expect(await run(client, "echo late")).toMatchObject({ code: 0, stdout: "late\n" });
  });

  it("channelDelayMs: every session channel is answered that much later", async () => {
    const client = await connectTracked(server);
    server.faults.channelDelayMs = 500;
    const { value: channel, ms } = await timed(() => open(client, "echo delayed"));
    expect(ms).toBeGreaterThanOrEqual(480);
    expect(await collect(channel)).toMatchObject({ code: 0, stdout: "delayed\n" });
  });

  it("refuseChannels: refuses that many session channels (reason 2), then serves again on the same connection", async () => {
    const client = await connectTracked(server);
    server.faults.refuseChannels = 2;
    await expect(open(client, "echo one")).rejects.toMatchObject({ reason: 2 });
    await expect(open(client, "echo two")).rejects.toMatchObject({ reason: 2 });
    expect(server.faults.refuseChannels).toBe(0);
    expect(await run(client, "echo three")).toMatchObject({ code: 0, stdout: "three\n" });
  });

  it("dropAfterBytes: a connection is cut once it has carried that many bytes, mid-output", async () => {
    server.faults.dropAfterBytes = 300_000;
    const client = await connectTracked(server);
    expect(await run(client, "echo small")).toMatchObject({ code: 0, stdout: "small\n" });
    const lost = closed(client);
    const channel = await open(client, "head -c 2000000 /dev/zero");
    channel.end();
    let received = 0;
    channel.on("data", (chunk: Buffer) => (received += chunk.length));
    const exited = new Promise<boolean>((resolve) => channel.once("exit", () => resolve(true)));
    await lost;
    expect(received).toBeGreaterThan(0);
    expect(received).toBeLessThan(300_000);
    expect(await Promise.race([exited, sleep(100).then(() => false)])).toBe(false);
  });

  it("dropConnections(): every open connection is dropped and its running command hung up", async () => {
    const client = await connectTracked(server);
    const lost = closed(client);
    const channel = await open(client, "echo $$; sleep 300");
    const shell = Number((await waitForOutput(channel, "\n")).trim());
    expect(alive(shell)).toBe(true);
    server.dropConnections();
    await lost;
    const deadline = Date.now() + 20_000;
    while (alive(shell) && Date.now() < deadline) await sleep(25);
    expect(alive(shell)).toBe(false);
  });
});
