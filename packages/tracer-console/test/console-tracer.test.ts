import { readFileSync } from "node:fs";
import { AuthenticationError, ConnectError, Redactor, RetriesExhaustedError } from "@tunnel-sh/core";
import { describe, expect, it } from "vitest";
import { ConsoleTracer } from "../src/index.js";
import type { ConsoleTracerOptions } from "../src/index.js";
import { traceScenarios } from "@tunnel-sh/testing";
import type { TraceScenario as Scenario } from "@tunnel-sh/testing";

const { command, failedCommand, nonZeroCommand, retriedCommand, script, transfer } = traceScenarios;

const T0 = Date.UTC(2026, 0, 2, 3, 4, 5);

function setup(options: Partial<ConsoleTracerOptions> & { isTTY?: boolean } = {}) {
  const chunks: string[] = [];
  let now = T0;
  let ids = 0;
  const { isTTY, ...rest } = options;
  const tracer = new ConsoleTracer({
    stream: { write: (chunk: string) => chunks.push(chunk), isTTY },
    clock: () => now,
    randomHex: (bytes) => (++ids).toString(16).padStart(bytes * 2, "0"),
    ...rest,
  });
  const scenario: Scenario = { tracer, advance: (ms) => (now += ms) };
  return {
    tracer,
    scenario,
    output: () => chunks.join(""),
    jsonLines: () =>
      chunks
        .join("")
        .trimEnd()
        .split("\n")
        .map((line) => JSON.parse(line) as Record<string, any>),
  };
}

describe("ConsoleTracer pretty format", () => {
  it("prints one line per finished command with host, what, outcome, duration and attempts, events indented", () => {
    const { scenario, output } = setup();
    command(scenario, { cmd: "systemctl status nginx", sudoPassword: "correct horse" });
    expect(output()).toBe(
      [
        "✓ deploy@web-1:22  command  sudo systemctl status nginx  exit 0  11 ms  1 attempt",
        "    +8 ms  sudo prompt answered",
        "    +11 ms  completed  exit 0",
        "",
      ].join("\n"),
    );
  });

  it("describes scripts by interpreter, argument count and size", () => {
    const { scenario, output } = setup();
    script(scenario);
    expect(output().split("\n")[0]).toBe("✓ deploy@web-1:22  script  /bin/bash  2 args  2.0 KiB  exit 0  21 ms  1 attempt");
  });

  it("describes transfers by direction, remote path, size, rate and verification; the local path only when asked", () => {
    const { scenario, output } = setup();
    transfer(scenario);
    expect(output()).toBe("✓ deploy@web-1:22  transfer  upload  /srv/app/app.tar.gz  3.0 MiB  2.0 MiB/s  sha256 verified  1.5 s  1 attempt\n");

    const local = setup({ recordLocalPaths: true });
    transfer(local.scenario);
    expect(local.output()).toBe(
      "✓ deploy@web-1:22  transfer  upload  ./dist/app.tar.gz → /srv/app/app.tar.gz  3.0 MiB  2.0 MiB/s  sha256 verified  1.5 s  1 attempt\n",
    );
  });

  it("shows a retried command's retry event and attempt count", () => {
    const { scenario, output } = setup();
    retriedCommand(scenario);
    expect(output()).toBe(
      [
        "✓ deploy@web-1:22  command  uptime  exit 0  212 ms  2 attempts",
        "    +5 ms  retry  attempt 2 in 200 ms  after CONNECT",
        "    +212 ms  completed  exit 0",
        "",
      ].join("\n"),
    );
  });

  it("marks a failed operation with ✗, its error code as outcome and the error indented", () => {
    const { scenario, output } = setup();
    failedCommand(scenario, new AuthenticationError("all configured authentication methods failed"));
    expect(output()).toBe(
      [
        "✗ deploy@web-1:22  command  systemctl restart nginx  AUTHENTICATION  5 ms  1 attempt",
        "    ✗ AUTHENTICATION  all configured authentication methods failed",
        "",
      ].join("\n"),
    );
  });

  it("marks a non-zero exit as failed without an error", () => {
    const { scenario, output } = setup();
    nonZeroCommand(scenario);
    expect(output()).toBe("✗ deploy@web-1:22  command  false  exit 1  3 ms  1 attempt\n    +3 ms  completed  exit 1\n");
  });

  it("shows child spans (pool acquire, connect) only at debug level, after their operation, as a tree", () => {
    const info = setup();
    retriedCommand(info.scenario);
    expect(info.output()).not.toContain("pool.acquire");

    const debug = setup({ level: "debug" });
    retriedCommand(debug.scenario);
    const lines = debug.output().trimEnd().split("\n");
    expect(lines[0]).toMatch(/^✓ deploy@web-1:22  command  uptime/);
    expect(lines.slice(3)).toEqual([
      "  ✗ deploy@web-1:22  pool.acquire  waited 5 ms  new connection  CONNECT  5 ms",
      "      +5 ms  pool.connect_failed",
      "      ✗ CONNECT  connect ECONNREFUSED 10.0.0.5:22",
      "    ✗ deploy@web-1:22  connect  via ssh2  CONNECT  4 ms",
      "        ✗ CONNECT  connect ECONNREFUSED 10.0.0.5:22",
      "  ✓ deploy@web-1:22  pool.acquire  waited 5 ms  new connection  5 ms",
      "    ✓ deploy@web-1:22  connect  via ssh2  4 ms",
      "        +4 ms  host ready  web-1:22",
    ]);
  });

  it("prints the pool's own root spans at debug level, or at info level when they failed", () => {
    const info = setup();
    info.tracer.startSpan("tunnel.pool.evict", { attributes: { "tunnel.connection.key": "deploy@web-1:22" } }).end();
    const warmUp = info.tracer.startSpan("tunnel.connect", { attributes: { "tunnel.connection.key": "deploy@web-1:22" } });
    warmUp.recordError(new ConnectError("refused"));
    warmUp.end();
    expect(info.output()).toBe("✗ deploy@web-1:22  connect  CONNECT  0.0 ms\n    ✗ CONNECT  refused\n");

    const debug = setup({ level: "debug" });
    debug.tracer.startSpan("tunnel.pool.evict", { attributes: { "tunnel.connection.key": "deploy@web-1:22" } }).end();
    expect(debug.output()).toBe("✓ deploy@web-1:22  pool.evict  0.0 ms\n");
  });

  it("at error level prints only operations that failed", () => {
    const { scenario, output } = setup({ level: "error" });
    command(scenario, { cmd: "true" });
    retriedCommand(scenario);
    nonZeroCommand(scenario);
    failedCommand(scenario, new ConnectError("refused"));
    const heads = output()
      .split("\n")
      .filter((line) => /^\S/.test(line));
    expect(heads).toHaveLength(2);
    expect(heads[0]).toContain("command  false  exit 1");
    expect(heads[1]).toContain("command  systemctl restart nginx  CONNECT");
  });

  it("colours only when asked or when the stream is a TTY", () => {
    const escape = "\x1b[";
    const tty = setup({ isTTY: true });
    command(tty.scenario, { cmd: "true" });
    expect(tty.output()).toContain(`${escape}32m✓${escape}0m`);

    const pipe = setup({ isTTY: false });
    command(pipe.scenario, { cmd: "true" });
    expect(pipe.output()).not.toContain(escape);

    const forced = setup({ isTTY: false, colors: true });
    failedCommand(forced.scenario, new ConnectError("refused"));
    expect(forced.output()).toContain(`${escape}31m✗${escape}0m`);

    const plain = setup({ isTTY: true, colors: false });
    command(plain.scenario, { cmd: "true" });
    expect(plain.output()).not.toContain(escape);
  });

  it("escapes control characters from remote text so an item stays on one line", () => {
    const { scenario, output } = setup();
    command(scenario, { cmd: "printf 'a\\n'\n\x1b[31mred" });
    expect(output().split("\n")[0]).toContain("printf 'a\\n'\\n\\x1b[31mred");
  });
});

describe("ConsoleTracer README", () => {
  it("shows pretty output exactly as the tracer prints it", () => {
    const readme = readFileSync(new URL("../README.md", import.meta.url), "utf8");
    const sample = /Pretty \(`format: "pretty"`, the default\):\n\n```\n([\s\S]*?)```/.exec(readme)?.[1];
    const { scenario, output } = setup();
    command(scenario, { cmd: "systemctl status nginx", sudoPassword: "correct horse" });
    retriedCommand(scenario);
    transfer(scenario);
    failedCommand(scenario, new AuthenticationError("all configured authentication methods failed"));
    expect(sample).toBe(output());
  });

  it("shows a JSON line as the tracer writes it, ids and times aside", () => {
    const readme = readFileSync(new URL("../README.md", import.meta.url), "utf8");
    const sample = /```json\n(.*)\n```/.exec(readme)?.[1];
    const { scenario, jsonLines } = setup({ format: "json" });
    command(scenario, { cmd: "systemctl status nginx" });
    const withoutIds = ({ traceId: _trace, spanId: _span, ...rest }: Record<string, unknown>) => rest;
    expect(withoutIds(JSON.parse(sample ?? "{}") as Record<string, unknown>)).toEqual(withoutIds(jsonLines()[0]!));
  });
});

describe("ConsoleTracer json format", () => {
  it("writes one parseable object per finished span with ids, times, attributes and events", () => {
    const { scenario, jsonLines } = setup({ format: "json", level: "debug" });
    command(scenario, { cmd: "systemctl status nginx" });
    const lines = jsonLines();
    expect(lines.map((line) => line["name"])).toEqual(["tunnel.connect", "tunnel.pool.acquire", "tunnel.command"]);
    const [connect, acquire, root] = lines as [Record<string, any>, Record<string, any>, Record<string, any>];
    expect(root).toMatchObject({
      level: "info",
      parentSpanId: null,
      start: new Date(T0).toISOString(),
      time: new Date(T0 + 11).toISOString(),
      durationMs: 11,
      status: "ok",
      attributes: {
        "server.address": "web-1",
        "server.port": 22,
        "tunnel.user": "deploy",
        "tunnel.command.text": "systemctl status nginx",
        "process.exit.code": 0,
        "tunnel.attempts": 1,
      },
      events: [{ name: "tunnel.command.completed", time: new Date(T0 + 11).toISOString(), attributes: { "process.exit.code": 0 } }],
    });
    expect(root["traceId"]).toMatch(/^[0-9a-f]{32}$/);
    expect(root["spanId"]).toMatch(/^[0-9a-f]{16}$/);
    expect(acquire["parentSpanId"]).toBe(root["spanId"]);
    expect(connect["parentSpanId"]).toBe(acquire["spanId"]);
    expect(new Set(lines.map((line) => line["traceId"]))).toEqual(new Set([root["traceId"]]));
    expect(acquire).toMatchObject({ level: "debug", attributes: { "tunnel.pool.connected": true, "tunnel.pool.wait_time": 0.005 } });
    expect(root["attributes"]).not.toHaveProperty("tunnel.success");
    expect(root).not.toHaveProperty("error");
  });

  it("at info level writes operations only", () => {
    const { scenario, jsonLines } = setup({ format: "json" });
    script(scenario);
    transfer(scenario);
    expect(jsonLines().map((line) => line["name"])).toEqual(["tunnel.script", "tunnel.transfer"]);
  });

  it("gives a failed span error status, level and an error with code and message", () => {
    const { scenario, jsonLines } = setup({ format: "json" });
    const error = new RetriesExhaustedError([new ConnectError("refused"), new ConnectError("refused again")]);
    failedCommand(scenario, error, { openBreaker: true });
    const [breaker, root] = jsonLines();
    expect(breaker).toMatchObject({
      name: "tunnel.breaker",
      level: "info",
      status: "ok",
      events: [{ name: "tunnel.breaker.state", attributes: { "tunnel.breaker.state": "open", "tunnel.breaker.previous_state": "closed" } }],
    });
    expect(root).toMatchObject({
      name: "tunnel.command",
      level: "error",
      status: "error",
      error: { type: "RETRIES_EXHAUSTED", code: "RETRIES_EXHAUSTED", message: "failed after 2 attempts: refused again", phase: "connect" },
      events: [],
    });
  });

  it("never writes colour codes, even on a TTY", () => {
    const { scenario, output } = setup({ format: "json", isTTY: true, colors: true });
    failedCommand(scenario, new ConnectError("refused"));
    expect(output()).not.toContain("\x1b[");
  });

  it("records the retry event of a failed-then-retried command", () => {
    const { scenario, jsonLines } = setup({ format: "json" });
    retriedCommand(scenario);
    const [root] = jsonLines();
    expect(root?.["events"]).toContainEqual(
      expect.objectContaining({
        name: "tunnel.retry",
        attributes: { "tunnel.attempt": 2, "tunnel.retry.delay": 0.2, "error.type": "CONNECT" },
      }),
    );
    expect(root?.["attributes"]["tunnel.attempts"]).toBe(2);
  });
});

describe("ConsoleTracer secrets", () => {
  const registered = "tok-9f8e7d6c5b";
  const sudoPassword = "sudo-pa55word";

  function leakyRun(scenario: Scenario, redactor: Redactor): void {
    command(scenario, { cmd: `curl -H 'Authorization: ${registered}' https://deploy`, sudoPassword, redactor });
    failedCommand(scenario, new ConnectError(`proxy refused ${registered} and ${sudoPassword}`), { sudoPassword, redactor });
  }

  it.each(["pretty", "json"] as const)("never prints a registered secret or a sudo password (%s)", (format) => {
    const redactor = new Redactor([registered]);
    const { scenario, output } = setup({ format, level: "debug", redactor });
    leakyRun(scenario, redactor);
    const text = output();
    expect(text).toContain("[REDACTED]");
    expect(text).not.toContain(registered);
    expect(text).not.toContain(sudoPassword);
  });

  it("redacts the tracer's own secrets even in spans the executor did not wrap", () => {
    const { tracer, output } = setup({ format: "json", redactor: new Redactor([registered]) });
    const span = tracer.startSpan("tunnel.command", { attributes: { "tunnel.command.text": `echo ${registered}` } });
    span.addEvent("tunnel.note", { detail: registered });
    span.recordError(new Error(`failed with ${registered}`));
    span.end();
    expect(output()).not.toContain(registered);
  });

  it("drops the command text when recordCommand is false", () => {
    const { scenario, output } = setup({ format: "json", recordCommand: false });
    command(scenario, { cmd: "cat /etc/motd" });
    expect(output()).not.toContain("/etc/motd");
    expect(output()).not.toContain("tunnel.command.text");
  });
});

describe("ConsoleTracer robustness", () => {
  it("never throws, even when the stream does", () => {
    const tracer = new ConsoleTracer({
      stream: {
        write: () => {
          throw new Error("stream closed");
        },
      },
    });
    const span = tracer.startSpan("tunnel.command", { attributes: { "server.address": "web-1" } });
    expect(() => {
      span.addEvent("tunnel.retry", { "tunnel.attempt": 2 });
      span.recordError(new ConnectError("refused"));
      span.end();
    }).not.toThrow();
  });

  it("writes nothing to a stream that is no longer writable", () => {
    const chunks: string[] = [];
    const tracer = new ConsoleTracer({ stream: { write: (chunk: string) => chunks.push(chunk), writable: false } });
    tracer.startSpan("tunnel.command").end();
    expect(chunks).toEqual([]);
  });

  it("ends a span once and ignores calls after the end", () => {
    const { tracer, jsonLines } = setup({ format: "json" });
    const span = tracer.startSpan("tunnel.command", { attributes: { "tunnel.command.text": "true" } });
    span.end();
    span.setAttributes({ "tunnel.late": true });
    span.addEvent("tunnel.late");
    span.end();
    const lines = jsonLines();
    expect(lines).toHaveLength(1);
    expect(lines[0]?.["attributes"]).not.toHaveProperty("tunnel.late");
  });

  it("treats a parent from another tracer as no parent", () => {
    const { tracer, jsonLines } = setup({ format: "json" });
    const foreign = { setAttributes() {}, addEvent() {}, recordError() {}, end() {} };
    tracer.startSpan("tunnel.command", { parent: foreign }).end();
    expect(jsonLines()[0]?.["parentSpanId"]).toBeNull();
  });
});
