/**
 * The circuit breaker with the executor's presets exactly as shipped, against a real port that refuses connections:
 * each failed connect attempt counts, so the breaker opens whatever the retry setting; open, it fails fast without a
 * connect; after the cooldown one probe goes through, and the host that is back closes it.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CircuitOpenError, DefaultExecutorConfig, Executor, TunnelError } from "@tunnel-sh/core";
import { ConnectionPool, DefaultPoolConfig } from "@tunnel-sh/pool";
import type { Transport } from "@tunnel-sh/core";
import { startSshd } from "@tunnel-sh/testing";
import type { Sshd } from "@tunnel-sh/testing";
import { makeTransport, TRANSPORTS } from "./support/transports.js";

/** Counts connect calls: each one is network I/O towards the host. */
function counting(inner: Transport): Transport & { readonly connects: number } {
  let connects = 0;
  return {
    name: inner.name,
    connect: (target, options) => {
      connects++;
      return inner.connect(target, options);
    },
    get connects() {
      return connects;
    },
  };
}

describe.each(TRANSPORTS)("the breaker as shipped over %s", (transportName) => {
  let sshd: Sshd;

  beforeAll(async () => {
    sshd = await startSshd();
  });
  afterAll(async () => {
    await sshd?.stop();
  });

  it(
    "DefaultExecutorConfig: opens after failureThreshold refused connects, fails fast, one probe after the cooldown closes it",
    { timeout: 120_000 },
    async () => {
      const config = DefaultExecutorConfig();
      const { failureThreshold, cooldown } = config.breaker;
      const transport = counting(makeTransport(transportName, sshd));
      const pool = new ConnectionPool(transport, DefaultPoolConfig());
      const executor = new Executor(pool, config);
      const target = { host: sshd.host, port: sshd.port, user: sshd.users.plain.name };
      const key = `${target.user}@${target.host}:${target.port}`;
      try {
        await sshd.crash();
        const errors: unknown[] = [];
        while (!(errors.at(-1) instanceof CircuitOpenError) && errors.length < 20) {
          errors.push(await executor.runCommand({ ...target, cmd: "true" }).catch((caught: unknown) => caught));
        }
        expect(errors.at(-1)).toBeInstanceOf(CircuitOpenError);
        expect(errors.slice(0, -1).every((error) => TunnelError.is(error) && ["CONNECT", "RETRIES_EXHAUSTED"].includes(error.code))).toBe(true);
        expect(transport.connects).toBe(failureThreshold);
        expect(executor.stats().breakers[key]).toBe("open");
        await expect(executor.runCommand({ ...target, cmd: "true" })).rejects.toBeInstanceOf(CircuitOpenError);
        expect(transport.connects).toBe(failureThreshold);

        await sshd.restart();
        const retryAfter = (errors.at(-1) as CircuitOpenError).retryAfterMs;
        expect(retryAfter).toBeLessThanOrEqual(cooldown);
        await new Promise((resolve) => setTimeout(resolve, retryAfter + 100));
        const probe = executor.runCommand({ ...target, cmd: "echo probe" });
        await expect(executor.runCommand({ ...target, cmd: "true" })).rejects.toBeInstanceOf(CircuitOpenError);
        expect(await probe).toMatchObject({ stdout: "probe\n", attempts: 1 });
        expect(transport.connects).toBe(failureThreshold + 1);
        expect(executor.stats().breakers[key]).toBe("closed");
        expect((await executor.runCommand({ ...target, cmd: "echo again" })).stdout).toBe("again\n");
      } finally {
        await pool.close();
      }
    },
  );
});
