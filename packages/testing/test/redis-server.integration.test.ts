import { connect } from "node:net";
import { describe, expect, it } from "vitest";
import { redisServerSupport, startRedisServer } from "../src/index.js";

const support = redisServerSupport();

/** One RESP command over a fresh socket; resolves with the reply's first `lines` lines joined by "|", or the socket error's code. */
function ask(port: number, command: string, lines = 1): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect(port, "127.0.0.1");
    let reply = "";
    socket.on("error", (error: NodeJS.ErrnoException) => resolve(error.code ?? "error"));
    socket.on("connect", () => socket.write(`${command}\r\n`));
    socket.on("data", (chunk: Buffer) => {
      reply += chunk.toString();
      const complete = reply.split("\r\n").slice(0, -1);
      if (complete.length >= lines) {
        socket.destroy();
        resolve(complete.slice(0, lines).join("|"));
      }
    });
  });
}

describe("redis-server availability", () => {
  it("has redis-server (in CI it is required)", () => {
    expect(support.available || !process.env["CI"]).toBe(true);
  });
});

if (support.available) {
  describe("startRedisServer", () => {
    it("starts a redis-server on loopback that keeps nothing on disk, and stop() ends it", async () => {
      const redis = await startRedisServer();
      try {
        expect(redis.url).toBe(`redis://127.0.0.1:${redis.port}`);
        expect(await ask(redis.port, "PING")).toBe("+PONG");
        expect(await ask(redis.port, "CONFIG GET save", 5)).toBe("*2|$4|save|$0|");
        expect(await ask(redis.port, "CONFIG GET appendonly", 5)).toBe("*2|$10|appendonly|$2|no");
      } finally {
        await redis.stop();
      }
      expect(await ask(redis.port, "PING")).toBe("ECONNREFUSED");
      await redis.stop();
    });
  });
}
