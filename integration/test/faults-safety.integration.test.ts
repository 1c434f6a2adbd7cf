/**
 * The safety cases of docs/faults.md (its second table), observed for real against OpenSSH sshd over both transports
 * and compared with the table at the end, like the network faults of `faults.integration.test.ts`: a row that no
 * longer matches, a case observed but missing there, or listed there but no longer observed fails the suite.
 * `TUNNEL_WRITE_FAULT_TABLE=1` prints the observed rows instead.
 */
import { randomBytes } from "node:crypto";
import { mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DefaultExecutorConfig, Executor } from "@tunnel-sh/core";
import type { Progress } from "@tunnel-sh/core";
import { ConnectionPool, DefaultPoolConfig } from "@tunnel-sh/pool";
import { descendants, freePort, listProcessesSync, startSshd } from "@tunnel-sh/testing";
import type { Sshd } from "@tunnel-sh/testing";
import { compareWithTable, observe, readFaultTable, renderRows } from "./support/fault-table.js";
import type { FaultObservation } from "./support/fault-table.js";
import { makeStack, makeTransport, TRANSPORTS } from "./support/transports.js";
import type { Stack } from "./support/transports.js";

const observations: FaultObservation[] = [];

/** Runs `operation`, measuring its time and the executor's attempts for it. */
async function measure(executor: Executor, operation: () => Promise<unknown>): Promise<{ outcome: unknown; attempts: number; ms: number }> {
  const before = executor.stats().attempts;
  const started = performance.now();
  const outcome = await operation().catch((caught: unknown) => caught);
  return { outcome, attempts: executor.stats().attempts - before, ms: performance.now() - started };
}

describe.each(TRANSPORTS)("safety cases over %s", (transportName) => {
  let sshd: Sshd;
  let noTty: Sshd;
  let stack: Stack;
  let noTtyStack: Stack;
  let local: string;
  const remote = `/tmp/tunnel-faults-safety-${transportName}-${process.pid}`;
  const record = (fault: string, measured: { outcome: unknown; attempts: number; ms: number }) => {
    observations.push(observe(fault, transportName, measured.outcome, measured.attempts, measured.ms));
  };

  beforeAll(async () => {
    sshd = await startSshd();
    noTty = await startSshd({ extraConfig: ["PermitTTY no"] });
    stack = makeStack(transportName, sshd);
    noTtyStack = makeStack(transportName, noTty);
    local = await mkdtemp(join(tmpdir(), "tunnel-faults-safety-"));
    await stack.executor.runCommand({ host: sshd.host, port: sshd.port, user: sshd.users.plain.name, cmd: `rm -rf ${remote} && mkdir -p ${remote}` });
  });
  afterAll(async () => {
    await stack?.executor.runCommand({ host: sshd.host, port: sshd.port, user: sshd.users.plain.name, cmd: `rm -rf ${remote}` }).catch(() => undefined);
    await stack?.close();
    await noTtyStack?.close();
    await sshd?.stop();
    await noTty?.stop();
    if (local) await rm(local, { recursive: true, force: true });
  });

  it("abort while sudo waits for its password", async () => {
    const target = { host: sshd.host, port: sshd.port, user: sshd.users.pwsudo.name };
    await stack.executor.runCommand({ ...target, cmd: "true" });
    const marker = `${remote}/sudo-ran`;
    const controller = new AbortController();
    // Aborted as soon as the command is handed over: sudo is starting or prompting.
    setTimeout(() => controller.abort(), 5);
    const measured = await measure(stack.executor, () =>
      stack.executor.runCommand({ ...target, cmd: `touch ${marker}`, sudo: { password: sshd.users.pwsudo.password }, signal: controller.signal }),
    );
    record("abort while sudo waits for its password", measured);
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(await readdir(remote)).not.toContain("sudo-ran");
  });

  it("a host that keeps refusing connections, DefaultExecutorConfig (breaker)", async () => {
    const pool = new ConnectionPool(makeTransport(transportName, sshd), DefaultPoolConfig());
    const executor = new Executor(pool, DefaultExecutorConfig());
    const target = { host: "127.0.0.1", port: await freePort(), user: sshd.users.plain.name };
    try {
      let measured = await measure(executor, () => executor.runCommand({ ...target, cmd: "true" }));
      record("connection refused, DefaultExecutorConfig: first operation", measured);
      measured = await measure(executor, () => executor.runCommand({ ...target, cmd: "true" }));
      record("connection refused, DefaultExecutorConfig: second operation (opens the breaker)", measured);
      measured = await measure(executor, () => executor.runCommand({ ...target, cmd: "true" }));
      record("connection refused, DefaultExecutorConfig: third operation (breaker open)", measured);
    } finally {
      await pool.close();
    }
  }, 60_000);

  it("pty: true on a server with PermitTTY no", async () => {
    const target = { host: noTty.host, port: noTty.port, user: noTty.users.plain.name };
    record(
      "pty: true on a server with PermitTTY no",
      await measure(noTtyStack.executor, () => noTtyStack.executor.runCommand({ ...target, cmd: "true", pty: true })),
    );
  });

  it("inputs past the command line limit and not valid Unicode", async () => {
    const target = { host: sshd.host, port: sshd.port, user: sshd.users.plain.name };
    record(
      "env value of 300 KiB",
      await measure(stack.executor, () => stack.executor.runCommand({ ...target, cmd: "true", env: { BIG: "x".repeat(300 * 1024) } })),
    );
    record(
      "env value with a lone surrogate",
      await measure(stack.executor, () => stack.executor.runCommand({ ...target, cmd: "true", env: { BAD: "a\uD800b" } })),
    );
  });

  it("a file name of 255 bytes", async () => {
    const target = { host: sshd.host, port: sshd.port, user: sshd.users.plain.name };
    const name = "n".repeat(255);
    await writeFile(join(local, name), "long name\n");
    record(
      "upload of a file named with 255 bytes",
      await measure(stack.executor, () =>
        stack.executor.transferFile({ ...target, direction: "upload", source: join(local, name), destination: `${remote}/${name}`, verify: "sha256" }),
      ),
    );
  });

  it("the server process of an upload killed mid-transfer", async () => {
    const target = { host: sshd.host, port: sshd.port, user: sshd.users.plain.name };
    await writeFile(join(local, "big.bin"), randomBytes(64 * 1024 * 1024));
    let killed = false;
    // From a progress report, synchronously: the upload stands still while this looks for the server's writer, so the
    // kill lands with bytes still to send (a kill found by polling could come after the upload, on an idle SFTP session).
    const killWriter = (progress: Progress): void => {
      if (killed || progress.bytes === 0 || progress.bytes >= (progress.total ?? Number.POSITIVE_INFINITY)) return;
      const own = descendants(listProcessesSync(), [sshd.pid]);
      const writer = own.find(
        (entry) =>
          /@internal-sftp/.test(entry.args) || (entry.args === "cat" && own.some((parent) => parent.pid === entry.ppid && parent.args.includes(remote))),
      );
      if (!writer) return;
      try {
        process.kill(writer.pid, "SIGKILL");
        killed = true;
      } catch {
        // gone already: look again at the next report
      }
    };
    const measured = await measure(stack.executor, () =>
      stack.executor.transferFile({
        ...target,
        direction: "upload",
        source: join(local, "big.bin"),
        destination: `${remote}/big.bin`,
        verify: "sha256",
        onProgress: killWriter,
      }),
    );
    expect(killed).toBe(true);
    record("server process of an upload killed mid-transfer", measured);
    expect((await readdir(remote)).filter((entry) => entry.endsWith(".part"))).toEqual([]);
  }, 60_000);
});

describe("docs/faults.md, safety table", () => {
  it("lists exactly the safety cases observed above", () => {
    if (process.env.TUNNEL_WRITE_FAULT_TABLE) {
      console.log(renderRows(observations));
      return;
    }
    expect(compareWithTable(observations, readFaultTable(undefined, "safety-table"))).toEqual([]);
  });
});
