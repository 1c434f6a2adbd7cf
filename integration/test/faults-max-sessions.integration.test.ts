/**
 * Demand well past the server's MaxSessions. With sshd `MaxSessions 2` and a pool budget of 10 channels per
 * connection, 16 concurrent commands all succeed: the pool learns the server's real budget from the refusals and
 * queues the rest. A command moved off a refused channel still gets every byte of its stdin stream.
 */
import { createHash, randomBytes } from "node:crypto";
import { Readable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startSshd } from "@tunnel-sh/testing";
import type { Sshd } from "@tunnel-sh/testing";
import { makeStack, TRANSPORTS } from "./support/transports.js";

let sshd: Sshd;
beforeAll(async () => {
  sshd = await startSshd({ usePam: false, maxSessions: 2 });
});
afterAll(async () => {
  await sshd?.stop();
});

describe.each(TRANSPORTS)("MaxSessions 2, 16 concurrent commands over %s", (name) => {
  it("every command succeeds; refusals are absorbed by the pool, not by the caller's retries", async () => {
    const stack = makeStack(name, sshd, { pool: { maxChannelsPerConnection: 10 }, transport: { maxChannels: 10 } });
    try {
      const target = { host: sshd.host, port: sshd.port, user: sshd.users.plain.name };
      const outcomes = await Promise.all(
        Array.from({ length: 16 }, (_, index) =>
          stack.executor.runCommand({ ...target, cmd: `sleep 0.3; echo ${index}` }).then(
            (result) => result.stdout,
            (error: { code?: string }) => `failed: ${error.code}`,
          ),
        ),
      );
      expect(outcomes).toEqual(Array.from({ length: 16 }, (_, index) => `${index}\n`));
      expect(stack.pool.stats().busyChannels).toBe(0);
    } finally {
      await stack.close();
    }
  }, 120_000);

  it("a command moved off a refused channel gets every byte of its stdin stream", async () => {
    const stack = makeStack(name, sshd, { pool: { maxChannelsPerConnection: 10 }, transport: { maxChannels: 10 } });
    try {
      const target = { host: sshd.host, port: sshd.port, user: sshd.users.plain.name };
      const inputs = Array.from({ length: 16 }, () => randomBytes(64 * 1024));
      const stream = (bytes: Buffer) => Readable.from([bytes.subarray(0, 1000), bytes.subarray(1000, 40_000), bytes.subarray(40_000)]);
      const outcomes = await Promise.all(
        inputs.map((bytes) =>
          stack.executor.runCommand({ ...target, cmd: "sleep 0.3; sha256sum", stdin: stream(bytes) }).then(
            (result) => result.stdout.split(" ")[0],
            (error: { code?: string }) => `failed: ${error.code}`,
          ),
        ),
      );
      expect(outcomes).toEqual(inputs.map((bytes) => createHash("sha256").update(bytes).digest("hex")));
    } finally {
      await stack.close();
    }
  }, 120_000);
});
