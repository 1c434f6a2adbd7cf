/**
 * A command is retried only with positive evidence that it never started (or `idempotent: true`). A refused PTY is a
 * failure that will repeat: never retried, never a silent success, a typed error naming the cause.
 */
import { readFile, rm } from "node:fs/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TunnelError } from "@tunnel-sh/core";
import { startSshd } from "@tunnel-sh/testing";
import type { Sshd } from "@tunnel-sh/testing";
import { makeStack, TRANSPORTS } from "./support/transports.js";
import type { Stack } from "./support/transports.js";

describe.each(TRANSPORTS)("retry evidence over %s", (transportName) => {
  let sshd: Sshd;
  let stack: Stack;

  beforeAll(async () => {
    sshd = await startSshd({ extraConfig: ["PermitTTY no"] });
    stack = makeStack(transportName, sshd);
  });
  afterAll(async () => {
    await stack?.close();
    await sshd?.stop();
  });

  it.each([false, true])(
    "pty: true on a server with PermitTTY no (idempotent: %s) runs at most once and fails with a typed, non-retryable error",
    async (idempotent) => {
      const counter = `/tmp/tunnel-pty-refused-${transportName}-${process.pid}-${idempotent}`;
      await rm(counter, { force: true });
      const target = { host: sshd.host, port: sshd.port, user: sshd.users.plain.name };
      const error = await stack.executor
        .runCommand({ ...target, cmd: `echo run >> ${counter}; echo out`, pty: true, idempotent })
        .catch((caught: unknown) => caught);
      const runs = (await readFile(counter, "utf8").catch(() => "")).split("\n").filter(Boolean).length;
      await rm(counter, { force: true });
      expect(runs).toBeLessThanOrEqual(1);
      expect(TunnelError.is(error)).toBe(true);
      const failure = error as TunnelError;
      expect(failure).toMatchObject({ code: "UNSUPPORTED_HOST", reason: "pty" });
      expect(failure.retryable).toBe(false);
      expect(failure.message).toMatch(/pseudo-terminal|pty/i);
      expect(stack.executor.stats().retries).toBe(0);
      // The connection is fine for everything else.
      expect((await stack.executor.runCommand({ ...target, cmd: "echo fine" })).stdout).toBe("fine\n");
    },
  );
});
