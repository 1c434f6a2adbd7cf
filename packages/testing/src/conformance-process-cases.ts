/**
 * The conformance cases about one process: connecting, output and exit statuses, stdin, binary safety and the
 * pseudo-terminal group. Registered by `describeTransportConformance`, in its order.
 */
import { createHash, randomBytes } from "node:crypto";
import { runProcess } from "@tunnel-sh/core";
import { MiB, collect, type SuiteConnections } from "./conformance-helpers.js";
import type { TestRunner } from "./transport-conformance.js";

/** Register the single-process cases; `pty` says whether the pty group is on (else one case checks it is declared off). */
export function describeProcessCases(suite: SuiteConnections, runner: TestRunner, pty: boolean): void {
  const { it, expect } = runner;

  it("connects to the target", async () => {
    const connection = await suite.usable();
    expect(connection.closed).toBe(false);
    expect(connection.transport).toBe(suite.context().transport.name);
    expect(connection.target.host).toBe(suite.context().target.host);
    expect(connection.maxChannels).toBeGreaterThanOrEqual(1);
    expect(typeof connection.capabilities.pty).toBe("boolean");
    expect(typeof connection.capabilities.signals).toBe("boolean");
    expect(typeof connection.capabilities.transfer).toBe("boolean");
  });

  it("runs echo and collects its output", async () => {
    const result = await runProcess(await suite.usable(), { command: "echo hello tunnel" });
    expect(result).toMatchObject({ exitCode: 0, signal: null, stdout: "hello tunnel\n", stderr: "", truncated: false });
  });

  it("reports exit codes 0, 1, 42 and 255 as data", async () => {
    const connection = await suite.usable();
    for (const code of [0, 1, 42, 255]) {
      const result = await runProcess(connection, { command: `echo code-${code}; exit ${code}` });
      expect(result, `exit ${code}`).toMatchObject({ exitCode: code, signal: null, stdout: `code-${code}\n` });
    }
  });

  it("keeps stderr apart from stdout", async () => {
    const result = await runProcess(await suite.usable(), { command: "echo out; echo err >&2; echo more" });
    expect(result).toMatchObject({ exitCode: 0, stdout: "out\nmore\n", stderr: "err\n" });
  });

  it("reports death by a signal as { exitCode: null, signal }", async () => {
    const connection = await suite.usable();
    for (const signal of ["TERM", "KILL"]) {
      const result = await runProcess(connection, { command: `kill -${signal} $$; echo not-reached` });
      expect(result, `kill -${signal}`).toMatchObject({ exitCode: null, signal: `SIG${signal}`, stdout: "" });
    }
    await suite.expectStillUsable(connection);
  });

  it("streams 50 MiB of output to the listener while collecting only up to the cap", async () => {
    let seen = 0;
    const result = await runProcess(await suite.usable(), {
      command: `head -c ${50 * MiB} /dev/zero`,
      maxOutputBytes: MiB,
      onStdout: (text) => (seen += text.length),
    });
    expect(result.exitCode).toBe(0);
    expect(seen).toBe(50 * MiB);
    expect(result.truncated).toBe(true);
    expect(result.stdout.length).toBe(MiB);
  }, 120_000);

  it("completes a command whose output is past the cap on both streams", async () => {
    const result = await runProcess(await suite.usable(), {
      command: `head -c ${10 * MiB} /dev/zero >&2; head -c ${10 * MiB} /dev/zero; echo`,
      maxOutputBytes: 1024,
      timeoutMs: 60_000,
    });
    expect(result).toMatchObject({ exitCode: 0, truncated: true });
    expect(result.stdout.length).toBe(1024);
    expect(result.stderr.length).toBe(1024);
  }, 90_000);

  it("is binary-safe: all 256 byte values come out, and go in and out, unchanged", async () => {
    const connection = await suite.usable();
    const every = Buffer.from(Array.from({ length: 256 }, (_, byte) => byte));
    const format = [...every].map((byte) => `\\${byte.toString(8).padStart(3, "0")}`).join("");
    const printer = connection.spawn({ command: `printf '${format}'` });
    printer.stdin.end();
    const printed = await collect(printer);
    expect(printed.status).toEqual({ exitCode: 0, signal: null });
    expect(printed.stdout.equals(every)).toBe(true);

    const payload = Buffer.concat(Array.from({ length: 256 }, () => every));
    const echo = connection.spawn({ command: "cat" });
    const collecting = collect(echo);
    echo.stdin.end(payload);
    const echoed = await collecting;
    expect(echoed.status).toEqual({ exitCode: 0, signal: null });
    expect(echoed.stdout.length).toBe(payload.length);
    expect(echoed.stdout.equals(payload)).toBe(true);
  });

  it("passes stdin from a string and from a large Buffer, then EOF", async () => {
    const connection = await suite.usable();
    expect(await runProcess(connection, { command: "cat" })).toMatchObject({ exitCode: 0, stdout: "" });
    const text = "first line\nsecond 'line' with $dollar and ünïcödé\n";
    expect(await runProcess(connection, { command: "cat", stdin: text })).toMatchObject({ exitCode: 0, stdout: text });
    const large = randomBytes(8 * MiB);
    const digest = createHash("sha256").update(large).digest("hex");
    const result = await runProcess(connection, { command: "sha256sum | cut -d' ' -f1", stdin: large });
    expect(result).toMatchObject({ exitCode: 0, stdout: `${digest}\n` });
  }, 60_000);

  if (pty) {
    it("allocates a pty on request: tty succeeds and lines end in \\r\\n", async () => {
      const connection = await suite.usable();
      expect(connection.capabilities.pty).toBe(true);
      const withPty = await runProcess(connection, { command: "tty && echo one && echo two", pty: true });
      expect(withPty.exitCode).toBe(0);
      expect(withPty.stdout).toMatch(/\/dev\/\S+\r\none\r\ntwo\r\n$/);
      const without = await runProcess(connection, { command: "tty" });
      expect(without.exitCode).not.toBe(0);
    });
  } else {
    it("declares no pty (the pty group is off)", async () => {
      expect((await suite.usable()).capabilities.pty).toBe(false);
    });
  }
}
