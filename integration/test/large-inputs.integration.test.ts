/**
 * Inputs past what an exec request or the host's argument limit carries: refused with a `ValidationError` before any
 * I/O (env values, commands), or sent through stdin (stdin, script content) and working. None of it touches another
 * operation running on the same pooled connection, and the connection is never evicted for it.
 */
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MAX_COMMAND_BYTES, ValidationError } from "@tunnel-sh/core";
import { startSshd } from "@tunnel-sh/testing";
import type { Sshd } from "@tunnel-sh/testing";
import { makeStack, TRANSPORTS } from "./support/transports.js";
import type { Stack } from "./support/transports.js";

const KiB = 1024;

describe.each(TRANSPORTS)("large inputs over %s", (transportName) => {
  let sshd: Sshd;
  let stack: Stack;
  const target = () => ({ host: sshd.host, port: sshd.port, user: sshd.users.plain.name });

  beforeAll(async () => {
    sshd = await startSshd();
    stack = makeStack(transportName, sshd);
  });
  afterAll(async () => {
    await stack?.close();
    await sshd?.stop();
  });

  it("refuses env values and commands past the limit before any I/O, while a bystander on the same connection finishes", async () => {
    const warm = await stack.executor.runCommand({ ...target(), cmd: "true" });
    expect(warm.exitCode).toBe(0);
    const created = stack.pool.stats().created;
    const bystander = stack.executor.runCommand({ ...target(), cmd: "sleep 1; echo bystander" });
    const huge = (bytes: number) => "x".repeat(bytes);
    const refused = await Promise.all([
      stack.executor.runCommand({ ...target(), cmd: 'printf %s "$BIG" | wc -c', env: { BIG: huge(300 * KiB) } }).catch((caught: unknown) => caught),
      stack.executor.runCommand({ ...target(), cmd: 'printf %s "$BIG" | wc -c', env: { BIG: huge(140 * KiB) } }).catch((caught: unknown) => caught),
      stack.executor.runCommand({ ...target(), cmd: `echo ${huge(200 * KiB)} | wc -c` }).catch((caught: unknown) => caught),
      stack.executor.runScript({ ...target(), content: "echo $#", args: [huge(MAX_COMMAND_BYTES)] }).catch((caught: unknown) => caught),
    ]);
    expect(refused.map((error) => (error instanceof ValidationError ? error.field : error))).toEqual(["env", "env", "cmd", "cmd"]);
    expect((await bystander).stdout).toBe("bystander\n");
    // No connection was opened or evicted for the refused operations.
    expect(stack.pool.stats()).toMatchObject({ created, evicted: {} });
    expect(stack.executor.stats().attempts).toBe(2);
  });

  it("a value just under the limit goes through exactly", async () => {
    const value = randomBytes((MAX_COMMAND_BYTES - 4 * KiB) / 2).toString("hex");
    const result = await stack.executor.runCommand({ ...target(), cmd: 'printf %s "$BIG" | sha256sum', env: { BIG: value } });
    const { createHash } = await import("node:crypto");
    expect(result.stdout.split(" ")[0]).toBe(createHash("sha256").update(value).digest("hex"));
  });

  it("large data goes through stdin and a script's content", async () => {
    const data = randomBytes(3 * 1024 * KiB).toString("base64");
    const { createHash } = await import("node:crypto");
    const digest = createHash("sha256").update(data).digest("hex");
    const viaStdin = await stack.executor.runCommand({ ...target(), cmd: "sha256sum", stdin: data });
    expect(viaStdin.stdout.split(" ")[0]).toBe(digest);
    const script = `#!/bin/sh\n# ${data.slice(0, 512 * KiB)}\necho script-ran\n`;
    const viaScript = await stack.executor.runScript({ ...target(), content: script });
    expect(viaScript.stdout).toBe("script-ran\n");
  });

  it("the transport itself refuses an oversize command without closing the connection", async () => {
    const lease = await stack.pool.acquire(target());
    try {
      const connection = lease.connection;
      const running = connection.spawn({ command: "sleep 1; echo bystander" });
      const output: Buffer[] = [];
      running.stdout.on("data", (chunk: Buffer) => output.push(chunk));
      running.stdin.end();
      const oversize = connection.spawn({ command: `echo ${"y".repeat(300 * KiB)}` });
      oversize.stdin.end();
      const error = await oversize.exit.catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(ValidationError);
      expect(await running.exit).toMatchObject({ exitCode: 0 });
      expect(Buffer.concat(output).toString()).toBe("bystander\n");
      expect(connection.closed).toBe(false);
      lease.release();
    } catch (error) {
      lease.destroy(error);
      throw error;
    }
  });
});
