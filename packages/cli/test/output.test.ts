import { describe, expect, it } from "vitest";
import { ExitCode, PrefixWriter, exitCodeFor, formatBytes, formatDuration, formatJson, formatSummary } from "../src/index.js";
import type { HostOutcome } from "../src/index.js";
import { Capture } from "./support.js";

const ok: HostOutcome = {
  name: "web-1",
  target: "deploy@web-1",
  ok: true,
  exitCode: 0,
  signal: null,
  durationMs: 120,
  attempts: 1,
  stdout: "hi\n",
  stderr: "",
};
const nonZero: HostOutcome = { ...ok, name: "web-2", ok: false, exitCode: 3, durationMs: 1520 };
const killed: HostOutcome = { ...ok, name: "web-3", ok: false, exitCode: null, signal: "SIGKILL" };
const unreachable: HostOutcome = {
  name: "db-1",
  target: "db-1:2222",
  ok: false,
  exitCode: null,
  signal: null,
  durationMs: 65_000,
  attempts: 3,
  error: { code: "RETRIES_EXHAUSTED", message: "failed after 3 attempts:\n connect ECONNREFUSED", phase: "connect", retryable: false },
};

describe("PrefixWriter", () => {
  it("writes whole lines with names padded to the same width, holding partial lines until their newline", () => {
    const out = new Capture();
    const writer = new PrefixWriter(["web-1", "db"], false);
    writer.write(out, "db", "stdout", "one\ntw");
    writer.write(out, "web-1", "stdout", "x\r\n");
    writer.write(out, "db", "stdout", "o\nthree");
    expect(out.text).toBe("db    | one\nweb-1 | x\ndb    | two\n");
    writer.flush(out, "db", "stdout");
    expect(out.text.endsWith("db    | three\n")).toBe(true);
    writer.flush(out, "db", "stdout");
    expect(out.text.match(/three/g)).toHaveLength(1);
  });

  it("keeps stdout and stderr of one host apart", () => {
    const out = new Capture();
    const writer = new PrefixWriter(["a"], false);
    writer.write(out, "a", "stdout", "out-");
    writer.write(out, "a", "stderr", "err\n");
    writer.write(out, "a", "stdout", "line\n");
    expect(out.text).toBe("a | err\na | out-line\n");
  });

  it("colours names only when asked", () => {
    expect(new PrefixWriter(["a"], true).prefix("a")).toBe("\u001b[36ma\u001b[0m | ");
    expect(new PrefixWriter(["a"], false).prefix("a")).toBe("a | ");
  });
});

describe("formatSummary", () => {
  it("shows host, exit, duration, attempts and error in aligned columns, then counts", () => {
    const text = formatSummary([ok, nonZero, killed, unreachable]);
    expect(text.split("\n")).toEqual([
      "HOST   EXIT     DURATION  ATTEMPTS  ERROR",
      "web-1  0        120ms     1",
      "web-2  3        1.52s     1         exit 3",
      "web-3  SIGKILL  120ms     1         killed by SIGKILL",
      "db-1   -        1m05s     3         RETRIES_EXHAUSTED: failed after 3 attempts: connect ECONNREFUSED",
      "4 hosts: 1 ok, 3 failed",
      "",
    ]);
  });

  it("shows ok for a finished transfer", () => {
    const transfer: HostOutcome = { ...ok, exitCode: null, transfer: { source: "a", destination: "b", bytes: 1, files: 1, verified: true, skipped: 0 } };
    expect(formatSummary([transfer]).split("\n")[1]).toBe("web-1  ok    120ms     1");
  });
});

describe("exitCodeFor", () => {
  it("is 0 when all succeeded, 1 for a non-zero exit, 3 when a host failed otherwise, 130 when interrupted", () => {
    expect(exitCodeFor([ok])).toBe(ExitCode.OK);
    expect(exitCodeFor([ok, nonZero])).toBe(ExitCode.COMMAND_FAILED);
    expect(exitCodeFor([ok, killed])).toBe(ExitCode.COMMAND_FAILED);
    expect(exitCodeFor([nonZero, unreachable])).toBe(ExitCode.HOST_FAILED);
    expect(exitCodeFor([ok], true)).toBe(ExitCode.INTERRUPTED);
  });
});

describe("formatJson", () => {
  it("is one parseable document with every host's outcome", () => {
    const report = JSON.parse(formatJson("run", [ok, unreachable], false)) as Record<string, unknown>;
    expect(report).toMatchObject({ command: "run", ok: false, exitCode: 3, interrupted: false });
    expect(report.hosts).toEqual([ok, unreachable]);
  });
});

describe("formatDuration and formatBytes", () => {
  it("reads naturally", () => {
    expect([formatDuration(5), formatDuration(1234), formatDuration(125_000)]).toEqual(["5ms", "1.23s", "2m05s"]);
    expect([formatBytes(512), formatBytes(1536), formatBytes(3 * 1024 * 1024)]).toEqual(["512 B", "1.5 KiB", "3.0 MiB"]);
  });
});
