/**
 * A TCP proxy on a free loopback port, in front of a server, that injects network faults on command:
 * a black hole, a pause, a delay, a reset or a clean close of every connection. Runs in the test process.
 *
 * @example
 * const proxy = await startFaultProxy({ target: { host: sshd.host, port: sshd.port } });
 * const connection = await transport.connect({ host: proxy.host, port: proxy.port, user });
 * proxy.blackhole();   // the link goes silent: only keepalives can notice
 */
import { connect, createServer, type Socket } from "node:net";
import { ConfigError, describeOptionValue, rejectUnknownOptions } from "@tunnel-sh/core";

export interface FaultProxy {
  readonly host: string;
  readonly port: number;
  /** Client connections open now. */
  readonly connections: number;
  /** Discard bytes both ways and keep the sockets open (no RST, no FIN). New connections are accepted, never forwarded. */
  blackhole(): void;
  /** Hold bytes both ways until `resume()` (or `ok()`), which delivers them in order. */
  pause(): void;
  resume(): void;
  /** Deliver every chunk `ms` later, both ways (order kept). `delay(0)` removes the delay. */
  delay(ms: number): void;
  /** Back to plain forwarding; bytes held by `pause()` are delivered, bytes a black hole swallowed are gone. */
  ok(): void;
  /** Reset (RST) every open connection. */
  reset(): void;
  /** Close (FIN) every open connection. */
  fin(): void;
  /** Close the listener and every connection. Idempotent. */
  close(): Promise<void>;
}

export interface FaultProxyOptions {
  /** The server behind the proxy. */
  readonly target: { readonly host: string; readonly port: number };
}

type Mode = "ok" | "blackhole" | "pause";

/** One direction of one proxied connection: forwards, holds, delays or drops its chunks. */
class Direction {
  readonly held: Buffer[] = [];
  /** When the last delayed chunk is due: later chunks never overtake it. */
  #lastDue = 0;
  readonly #timers = new Set<NodeJS.Timeout>();

  constructor(private readonly to: Socket) {}

  send(chunk: Buffer, mode: Mode, delayMs: number): void {
    if (mode === "blackhole") return;
    if (mode === "pause") {
      this.held.push(chunk);
      return;
    }
    const now = Date.now();
    if (delayMs <= 0 && this.#lastDue <= now) {
      this.#write(chunk);
      return;
    }
    const due = Math.max(now + delayMs, this.#lastDue);
    this.#lastDue = due;
    const timer = setTimeout(() => {
      this.#timers.delete(timer);
      this.#write(chunk);
    }, due - now);
    this.#timers.add(timer);
  }

  flush(delayMs: number): void {
    for (const chunk of this.held.splice(0)) this.send(chunk, "ok", delayMs);
  }

  stop(): void {
    for (const timer of this.#timers) clearTimeout(timer);
    this.#timers.clear();
  }

  #write(chunk: Buffer): void {
    if (!this.to.destroyed && this.to.writable) this.to.write(chunk);
  }
}

interface Pair {
  readonly client: Socket;
  readonly server: Socket | undefined;
  readonly up: Direction | undefined;
  readonly down: Direction | undefined;
}

/** Start a fault proxy in front of `options.target`. It starts in the `ok` state. */
export async function startFaultProxy(options: FaultProxyOptions): Promise<FaultProxy> {
  if (options === undefined) throw new ConfigError("target", "is required: startFaultProxy needs { target: { host, port } }");
  rejectUnknownOptions(options, ["target"], "startFaultProxy");
  const { target } = options;
  if (typeof target !== "object" || target === null) {
    throw new ConfigError("target", `must be { host, port }, got ${describeOptionValue(target)}`);
  }
  rejectUnknownOptions(target, ["host", "port"], "startFaultProxy", { path: "target" });
  if (typeof target.host !== "string" || target.host === "") throw new ConfigError("target.host", "must be a non-empty string");
  if (!Number.isInteger(target.port) || target.port < 1 || target.port > 65535) {
    throw new ConfigError("target.port", `must be an integer from 1 to 65535, got ${describeOptionValue(target.port)}`);
  }
  let mode: Mode = "ok";
  let delayMs = 0;
  const pairs = new Set<Pair>();
  /** Every socket still open, including server sides a black hole left hanging: `close()` ends them all. */
  const sockets = new Set<Socket>();
  const track = (socket: Socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  };

  const destroyPair = (pair: Pair) => {
    pairs.delete(pair);
    pair.up?.stop();
    pair.down?.stop();
    pair.client.destroy();
    pair.server?.destroy();
  };

  const server = createServer((client) => {
    client.setNoDelay(true);
    client.on("error", () => {});
    track(client);
    if (mode === "blackhole") {
      // Accepted and then silent: the client waits for a banner that never comes.
      const pair: Pair = { client, server: undefined, up: undefined, down: undefined };
      pairs.add(pair);
      client.on("data", () => {});
      client.on("close", () => pairs.delete(pair));
      return;
    }
    const upstream = connect(target.port, target.host);
    upstream.setNoDelay(true);
    upstream.on("error", () => {});
    track(upstream);
    const pair: Pair = { client, server: upstream, up: new Direction(upstream), down: new Direction(client) };
    pairs.add(pair);
    client.on("data", (chunk: Buffer) => pair.up?.send(chunk, mode, delayMs));
    upstream.on("data", (chunk: Buffer) => pair.down?.send(chunk, mode, delayMs));
    // One side closing closes the other — except in a black hole, where the other side is left hanging, as it would be.
    const onClose = () => {
      if (mode === "blackhole") {
        pairs.delete(pair);
        return;
      }
      destroyPair(pair);
    };
    client.on("close", onClose);
    upstream.on("close", onClose);
    client.on("end", () => {
      if (mode !== "blackhole") upstream.end();
    });
    upstream.on("end", () => {
      if (mode !== "blackhole") client.end();
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      server.off("error", reject);
      resolve();
    });
  });
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : 0;
  let closing: Promise<void> | undefined;

  const flush = () => {
    for (const pair of pairs) {
      pair.up?.flush(delayMs);
      pair.down?.flush(delayMs);
    }
  };

  return {
    host: "127.0.0.1",
    port,
    get connections() {
      return [...pairs].filter((pair) => !pair.client.destroyed).length;
    },
    blackhole() {
      mode = "blackhole";
      for (const pair of pairs) {
        pair.up?.held.splice(0);
        pair.down?.held.splice(0);
      }
    },
    pause() {
      if (mode !== "blackhole") mode = "pause";
    },
    resume() {
      if (mode === "pause") mode = "ok";
      flush();
    },
    delay(ms: number) {
      delayMs = Math.max(0, ms);
    },
    ok() {
      mode = "ok";
      flush();
    },
    reset() {
      for (const pair of [...pairs]) {
        pairs.delete(pair);
        pair.up?.stop();
        pair.down?.stop();
        pair.client.resetAndDestroy();
        if (pair.server && !pair.server.destroyed) pair.server.resetAndDestroy();
      }
    },
    fin() {
      for (const pair of [...pairs]) {
        pair.client.end();
        pair.server?.end();
      }
    },
    close() {
      closing ??= new Promise<void>((resolve) => {
        for (const pair of [...pairs]) destroyPair(pair);
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      });
      return closing;
    },
  };
}
