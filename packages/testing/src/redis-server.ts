/**
 * A throwaway real `redis-server` (the Debian package) on a free loopback port, with nothing written to disk
 * (`--save '' --appendonly no`), for the queue's tests. Stopped (and its folder removed) by `stop()`.
 *
 * @example
 * const redis = await startRedisServer();
 * const producer = new QueueProducer({ redis: redis.url });
 * await redis.stop();
 */
import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { childEnvironment } from "./child-environment.js";
import { findProgram, serverSupport, type ServerSupport } from "./server-support.js";
import { freePort } from "./server-process.js";

const SEARCH_PATH = ["/usr/bin", "/usr/local/bin", "/usr/sbin", "/bin"];

export interface RedisServer {
  /** Always `127.0.0.1`. */
  readonly host: string;
  readonly port: number;
  /** `redis://127.0.0.1:PORT`. */
  readonly url: string;
  /** Stop the server (SIGTERM, then SIGKILL) and remove its folder. Idempotent. */
  stop(): Promise<void>;
}

export type RedisServerSupport = ServerSupport;

/**
 * Whether `redis-server` is installed. When it is not and `process.env.CI` is set, this throws: CI must run the
 * queue's suites, never skip them.
 */
export function redisServerSupport(): RedisServerSupport {
  return serverSupport("redis-server", redisServerPath() !== undefined ? undefined : "redis-server is missing (install the redis-server package)");
}

function redisServerPath(): string | undefined {
  return findProgram("redis-server", SEARCH_PATH);
}

/** Start a `redis-server` on a free loopback port; resolves once it answers PING. */
export async function startRedisServer(): Promise<RedisServer> {
  const path = redisServerPath();
  if (path === undefined) throw new Error("redis-server is missing (install the redis-server package)");
  const dir = await mkdtemp(join(tmpdir(), "tunnel-redis-"));
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    const child = spawn(
      path,
      ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir, "--protected-mode", "yes", "--loglevel", "warning"],
      { stdio: ["ignore", "pipe", "pipe"], env: childEnvironment() },
    );
    let log = "";
    child.stdout?.on("data", (chunk: Buffer) => (log = (log + chunk.toString()).slice(-4_000)));
    child.stderr?.on("data", (chunk: Buffer) => (log = (log + chunk.toString()).slice(-4_000)));
    const started = await waitForPing(port, child);
    if (started) return running(port, child, dir);
    await stopChild(child);
    // Another process took the port between the probe and the bind: try another.
    if (attempt >= 5) {
      await rm(dir, { recursive: true, force: true });
      throw new Error(`redis-server did not start on 127.0.0.1:${port}: ${log.trim()}`);
    }
  }
}

function running(port: number, child: ChildProcess, dir: string): RedisServer {
  let stopping: Promise<void> | undefined;
  return {
    host: "127.0.0.1",
    port,
    url: `redis://127.0.0.1:${port}`,
    stop: () =>
      (stopping ??= (async () => {
        await stopChild(child);
        await rm(dir, { recursive: true, force: true });
      })()),
  };
}

async function waitForPing(port: number, child: ChildProcess): Promise<boolean> {
  for (let tries = 0; tries < 200; tries++) {
    if (child.exitCode !== null || child.signalCode !== null) return false;
    if (await ping(port)) return true;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return false;
}

function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, "127.0.0.1");
    let answer = "";
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1_000, () => done(false));
    socket.on("error", () => done(false));
    socket.on("connect", () => socket.write("PING\r\n"));
    socket.on("data", (chunk: Buffer) => {
      answer += chunk.toString();
      if (answer.includes("\r\n")) done(answer.startsWith("+PONG"));
    });
  });
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), 5_000);
  await exited;
  clearTimeout(timer);
}
