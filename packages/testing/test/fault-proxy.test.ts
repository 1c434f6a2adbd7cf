import { connect, createServer, type Server, type Socket } from "node:net";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { startFaultProxy, type FaultProxy } from "@tunnel-sh/testing";

/** A local echo server that counts the connections it accepted. */
let echo: Server;
let echoPort = 0;
let accepted = 0;
const serverSockets = new Set<Socket>();

beforeAll(async () => {
  echo = createServer((socket) => {
    accepted += 1;
    serverSockets.add(socket);
    socket.on("error", () => {});
    socket.on("close", () => serverSockets.delete(socket));
    socket.pipe(socket);
  });
  await new Promise<void>((resolve) => echo.listen(0, "127.0.0.1", resolve));
  echoPort = (echo.address() as { port: number }).port;
});

afterAll(async () => {
  for (const socket of serverSockets) socket.destroy();
  await new Promise((resolve) => echo.close(resolve));
});

let proxy: FaultProxy;
afterEach(async () => {
  await proxy?.close();
});

interface Client {
  readonly socket: Socket;
  received(): string;
  /** Resolves once `text` has been received (rejects after `ms`). */
  waitFor(text: string, ms?: number): Promise<void>;
  readonly events: string[];
}

async function client(port: number): Promise<Client> {
  const socket = connect(port, "127.0.0.1");
  let text = "";
  const events: string[] = [];
  socket.on("data", (chunk: Buffer) => (text += chunk.toString()));
  socket.on("end", () => events.push("end"));
  socket.on("close", () => events.push("close"));
  socket.on("error", (error: NodeJS.ErrnoException) => events.push(`error:${error.code}`));
  await new Promise((resolve) => socket.once("connect", resolve));
  return {
    socket,
    events,
    received: () => text,
    waitFor: async (wanted, ms = 5_000) => {
      const deadline = Date.now() + ms;
      while (!text.includes(wanted)) {
        if (Date.now() > deadline) throw new Error(`did not receive ${wanted}; got ${JSON.stringify(text)}`);
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    },
  };
}

const settle = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe("startFaultProxy", () => {
  it("forwards both ways and counts live connections", async () => {
    proxy = await startFaultProxy({ target: { host: "127.0.0.1", port: echoPort } });
    expect(proxy.host).toBe("127.0.0.1");
    const one = await client(proxy.port);
    const two = await client(proxy.port);
    one.socket.write("ping");
    await one.waitFor("ping");
    await settle(20);
    expect(proxy.connections).toBe(2);
    two.socket.destroy();
    await settle(50);
    expect(proxy.connections).toBe(1);
  });

  it("holds bytes while paused and delivers them in order on resume", async () => {
    proxy = await startFaultProxy({ target: { host: "127.0.0.1", port: echoPort } });
    const one = await client(proxy.port);
    proxy.pause();
    one.socket.write("a");
    one.socket.write("b");
    await settle(150);
    expect(one.received()).toBe("");
    proxy.resume();
    await one.waitFor("ab");
  });

  it("delays every chunk both ways", async () => {
    proxy = await startFaultProxy({ target: { host: "127.0.0.1", port: echoPort } });
    const one = await client(proxy.port);
    proxy.delay(150);
    const started = Date.now();
    one.socket.write("slow");
    await one.waitFor("slow");
    expect(Date.now() - started).toBeGreaterThanOrEqual(280);
    proxy.delay(0);
    const fast = Date.now();
    one.socket.write("fast");
    await one.waitFor("fast");
    expect(Date.now() - fast).toBeLessThan(150);
  });

  it("black-holes bytes without closing, and never forwards new connections", async () => {
    proxy = await startFaultProxy({ target: { host: "127.0.0.1", port: echoPort } });
    const one = await client(proxy.port);
    one.socket.write("before");
    await one.waitFor("before");
    proxy.blackhole();
    const acceptedBefore = accepted;
    one.socket.write("lost");
    const late = await client(proxy.port);
    late.socket.write("hello?");
    await settle(300);
    expect(one.received()).toBe("before");
    expect(late.received()).toBe("");
    expect(accepted).toBe(acceptedBefore);
    expect(one.events).toEqual([]);
    expect(late.events).toEqual([]);
    expect(proxy.connections).toBe(2);
    proxy.ok();
    one.socket.write("after");
    await one.waitFor("after");
  });

  it("resets every connection with RST", async () => {
    proxy = await startFaultProxy({ target: { host: "127.0.0.1", port: echoPort } });
    const one = await client(proxy.port);
    proxy.reset();
    await settle(100);
    expect(one.events).toContain("error:ECONNRESET");
  });

  it("closes every connection with FIN", async () => {
    proxy = await startFaultProxy({ target: { host: "127.0.0.1", port: echoPort } });
    const one = await client(proxy.port);
    proxy.fin();
    await settle(100);
    expect(one.events[0]).toBe("end");
    expect(one.events.some((event) => event.startsWith("error"))).toBe(false);
  });

  it("close() ends every connection and stops listening; it is idempotent", async () => {
    proxy = await startFaultProxy({ target: { host: "127.0.0.1", port: echoPort } });
    const one = await client(proxy.port);
    proxy.blackhole();
    await proxy.close();
    await proxy.close();
    await settle(50);
    expect(one.events).toContain("close");
    const refused = await new Promise<string>((resolve) => {
      const socket = connect(proxy.port, "127.0.0.1");
      socket.on("connect", () => resolve("connected"));
      socket.on("error", (error: NodeJS.ErrnoException) => resolve(error.code ?? "error"));
    });
    expect(refused).toBe("ECONNREFUSED");
  });
});
