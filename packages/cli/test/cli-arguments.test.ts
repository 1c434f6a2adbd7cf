import { describe, expect, it } from "vitest";
import { freePort } from "@tunnel-sh/testing";
import { ExitCode, parseDuration, parseMaxFail, parseSerial, parseEnvAssignments, parseHostList, pathForHost, runCli } from "../src/index.js";
import type { CliIo } from "../src/index.js";
import { Capture } from "./support.js";

function io(overrides: Partial<CliIo> = {}): CliIo & { stdout: Capture; stderr: Capture } {
  return { stdout: new Capture(), stderr: new Capture(), env: {}, ...overrides } as CliIo & { stdout: Capture; stderr: Capture };
}

describe("runCli usage", () => {
  it.each(["run", "script", "put", "get", "demo"])("prints help for %s and exits 0", async (command) => {
    const streams = io();
    expect(await runCli([command, "--help"], streams)).toBe(ExitCode.OK);
    expect(streams.stdout.text).toContain(`Usage: tunnel ${command}`);
  });

  it("prints the version", async () => {
    const streams = io();
    expect(await runCli(["--version"], streams)).toBe(0);
    expect(streams.stdout.text).toMatch(/^\d+\.\d+\.\d+/);
  });

  it.each([
    [[], /Usage: tunnel/],
    [["run", "-H", "web-1"], /missing required argument 'command'/],
    [["run", "uptime"], /no hosts: name them with -H/],
    [["run", "-g", "web", "uptime"], /-g\/--group needs an inventory/],
    [["run", "-H", "web-1", "-e", "1X=y", "uptime"], /"1X" is not a valid variable name/],
    [["run", "-H", "web-1", "-e", "NOEQUALS", "uptime"], /expected NAME=value/],
    [["run", "-H", "web-1", "--transport", "telnet", "uptime"], /argument 'telnet' is invalid/],
    [["run", "-H", "web-1", "-c", "0", "uptime"], /must be an integer from 1/],
    [["run", "-H", "web-1", "-t", "soon", "uptime"], /not a duration/],
    [["run", "-H", "web-1:99999", "uptime"], /out of range/],
    [["run", "-H", "web-1", "--known-hosts", "/x", "--insecure-accept-any-host-key", "uptime"], /contradict each other/],
    [["run", "-H", "web-1", "--ask-sudo-pass", "uptime"], /needs a terminal on stdin/],
    [["run", "-H", "web-1", "--sudo-pass-env", "NOT_SET_ANYWHERE", "uptime"], /environment variable NOT_SET_ANYWHERE is not set/],
    [["run", "-H", "web-1", "--sudo-pass", "hunter2", "uptime"], /unknown option '--sudo-pass'/],
    [["run", "-i", "/nonexistent/inventory.yaml", "uptime"], /cannot read it \(ENOENT\)/],
    [["script", "-H", "web-1", "/nonexistent/deploy.sh"], /script \/nonexistent\/deploy\.sh: cannot read it/],
    [["get", "-H", "web-1,web-2", "/etc/hostname", "/tmp/hostname"], /the local path needs \{host\}/],
    [["put", "-H", "web-1", "--chown", "a:b:c", "x", "y"], /expected owner, owner:group or :group/],
  ])("%j exits 2 with a message, running nothing", async (argv, message) => {
    const streams = io();
    expect(await runCli(argv, streams)).toBe(ExitCode.USAGE);
    expect(streams.stderr.text).toMatch(message);
    expect(streams.stderr.text).not.toContain("HOST");
  });

  it("keeps the sudo password from the environment out of every line it prints", async () => {
    const port = await freePort();
    const streams = io({ env: { DEPLOY_SUDO_PASSWORD: "pw-Zebra-42" } });
    const status = await runCli(
      ["run", "-H", `127.0.0.1:${port}`, "--retries", "0", "--sudo-pass-env", "DEPLOY_SUDO_PASSWORD", "-v", "--", "echo pw-Zebra-42"],
      streams,
    );
    expect(status).toBe(ExitCode.HOST_FAILED);
    expect(streams.stderr.text).toContain("CONNECT");
    expect(streams.stdout.text + streams.stderr.text).not.toContain("pw-Zebra-42");
  });

  it("reports an unreachable host in --json and exits 3", async () => {
    const port = await freePort();
    const streams = io();
    const status = await runCli(["run", "-H", `127.0.0.1:${port}`, "--retries", "1", "--json", "uptime"], streams);
    expect(status).toBe(ExitCode.HOST_FAILED);
    const report = JSON.parse(streams.stdout.text) as { exitCode: number; hosts: Array<Record<string, unknown>> };
    expect(report.exitCode).toBe(3);
    expect(report.hosts[0]).toMatchObject({ name: `127.0.0.1:${port}`, ok: false, attempts: 2, error: { code: "RETRIES_EXHAUSTED", phase: "connect" } });
    expect(streams.stderr.text).toBe("");
  });

  it("cancels everything and exits 130 when interrupted before the hosts were reached", async () => {
    const controller = new AbortController();
    controller.abort();
    const port = await freePort();
    const streams = io({ interrupt: controller.signal });
    expect(await runCli(["run", "-H", `127.0.0.1:${port}`, "--json", "uptime"], streams)).toBe(ExitCode.INTERRUPTED);
    const report = JSON.parse(streams.stdout.text) as { interrupted: boolean; hosts: Array<{ error?: { code: string } }> };
    expect(report.interrupted).toBe(true);
    expect(report.hosts[0]?.error?.code).toBe("ABORTED");
  });
});

describe("parseDuration", () => {
  it("reads ms, s, m, h and plain seconds", () => {
    expect([parseDuration("500ms"), parseDuration("30s"), parseDuration("1.5m"), parseDuration("1h"), parseDuration("10")]).toEqual([
      500, 30_000, 90_000, 3_600_000, 10_000,
    ]);
  });

  it.each(["0", "-1s", "5d", "", "25h"])("rejects %j", (text) => {
    expect(() => parseDuration(text)).toThrow();
  });
});

describe("parseEnvAssignments", () => {
  it("splits at the first = and allows empty values", () => {
    expect(parseEnvAssignments(["LC_ALL=C", "Q=a=b", "EMPTY="])).toEqual({ LC_ALL: "C", Q: "a=b", EMPTY: "" });
  });
});

describe("pathForHost", () => {
  it("replaces every {host} with the host's name, slashes made safe", () => {
    const [host] = parseHostList(["deploy@web-1"]);
    if (!host) throw new Error("no host");
    expect(pathForHost("./logs/{host}/{host}.log", host)).toBe("./logs/deploy@web-1/deploy@web-1.log");
    expect(pathForHost("/tmp/plain", host)).toBe("/tmp/plain");
  });
});

describe("--serial and --max-fail", () => {
  it("reads batch sizes as counts and percentages", () => {
    expect(parseSerial("1,10%,100%")).toEqual([1, "10%", "100%"]);
    expect(parseSerial("5")).toEqual([5]);
    for (const bad of ["0", "1,,2", "-1", "0%", "150%", "ten"]) expect(() => parseSerial(bad), bad).toThrow(/batch size/);
  });

  it("reads a failure budget as a count or a percentage", () => {
    expect(parseMaxFail("0")).toBe(0);
    expect(parseMaxFail("3")).toBe(3);
    expect(parseMaxFail("12.5%")).toBe("12.5%");
    for (const bad of ["-1", "101%", "lots", ""]) expect(() => parseMaxFail(bad), bad).toThrow(/failure budget/);
  });
});
