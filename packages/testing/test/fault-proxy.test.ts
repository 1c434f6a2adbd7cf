import { connect, createServer, type Server, type Socket } from "node:net";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
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
  /** Resolves once `text` has been received, on the data event that brings it (rejects after `ms`, a hang guard). */
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
    waitFor: (wanted, ms = 20_000) =>
      new Promise<void>((resolve, reject) => {
        if (text.includes(wanted)) return resolve();
        const onData = () => {
          if (!text.includes(wanted)) return;
          clearTimeout(guard);
          socket.off("data", onData);
          resolve();
        };
        const guard = setTimeout(() => {
          socket.off("data", onData);
          reject(new Error(`did not receive ${wanted}; got ${JSON.stringify(text)}`));
        }, ms);
        socket.on("data", onData);
      }),
  };
}

/** For checks that nothing happens: a pause long enough for anything wrongly forwarded to show up. */
const settle = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Resolves once `check` holds, however long that takes (the test's timeout is the only bound). */
async function until(check: () => boolean): Promise<void> {
  while (!check()) await new Promise((resolve) => setTimeout(resolve, 10));
}

describe("startFaultProxy", () => {
  it("forwards both ways and counts live connections", async () => {
    proxy = await startFaultProxy({ target: { host: "127.0.0.1", port: echoPort } });
    expect(proxy.host).toBe("127.0.0.1");
    const one = await client(proxy.port);
    const two = await client(proxy.port);
    one.socket.write("ping");
    await one.waitFor("ping");
    await until(() => proxy.connections === 2);
    two.socket.destroy();
    await until(() => proxy.connections === 1);
    expect(proxy.connections).toBe(1);
    expect(one.received()).toBe("ping");
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

  it("delays every chunk both ways; delay(0) forwards without a timer again", async () => {
    proxy = await startFaultProxy({ target: { host: "127.0.0.1", port: echoPort } });
    const one = await client(proxy.port);
    proxy.delay(150);
    const started = performance.now();
    one.socket.write("slow");
    await one.waitFor("slow");
    // Held once on the way up and once on the way down (a lower bound: a busy machine only adds to it).
    expect(performance.now() - started).toBeGreaterThanOrEqual(280);
    proxy.delay(0);
    // With timers frozen, only a chunk forwarded at once, both ways, can arrive.
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout"] });
    try {
      one.socket.write("fast");
      await one.waitFor("fast");
    } finally {
      vi.useRealTimers();
    }
    expect(one.received()).toBe("slowfast");
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
    await until(() => proxy.connections === 2);
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
    await until(() => one.events.includes("close"));
    expect(one.events).toContain("error:ECONNRESET");
  });

  it("closes every connection with FIN", async () => {
    proxy = await startFaultProxy({ target: { host: "127.0.0.1", port: echoPort } });
    const one = await client(proxy.port);
    proxy.fin();
    await until(() => one.events.length > 0);
    expect(one.events[0]).toBe("end");
    expect(one.events.some((event) => event.startsWith("error"))).toBe(false);
  });

  it("close() ends every connection and stops listening; it is idempotent", async () => {
    proxy = await startFaultProxy({ target: { host: "127.0.0.1", port: echoPort } });
    const one = await client(proxy.port);
    proxy.blackhole();
    await proxy.close();
    await proxy.close();
    await until(() => one.events.includes("close"));
    expect(one.events.filter((event) => event === "close")).toHaveLength(1);
    const refused = await new Promise<string>((resolve) => {
      const socket = connect(proxy.port, "127.0.0.1");
      socket.on("connect", () => resolve("connected"));
      socket.on("error", (error: NodeJS.ErrnoException) => resolve(error.code ?? "error"));
    });
    expect(refused).toBe("ECONNREFUSED");
  });
});
