/**
 * `tunnel demo` needs nothing but Node (and the embedded server's Perl): no sshd, no root. It must leave nothing
 * behind: no process, no temporary file.
 */
import { existsSync } from "node:fs";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ExitCode, runDemo } from "../src/index.js";
import { assertFreshBuild, tunnel } from "./process.js";
import { Capture } from "./support.js";

/** Processes whose environment mentions `text` (every process the demo starts inherits its TMPDIR). */
async function processesMentioning(text: string): Promise<string[]> {
  const found: string[] = [];
  for (const entry of await readdir("/proc")) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    const environment = await readFile(`/proc/${entry}/environ`, "latin1").catch(() => "");
    if (environment.includes(text)) found.push(`${entry} ${(await readFile(`/proc/${entry}/cmdline`, "latin1").catch(() => "")).replace(/\0/g, " ")}`);
  }
  return found;
}

describe("tunnel demo", () => {
  let privateTmp: string;

  beforeAll(async () => {
    privateTmp = await mkdtemp(join(tmpdir(), "tunnel-cli-demo-test-"));
  });

  afterAll(async () => {
    await rm(privateTmp, { recursive: true, force: true });
  });

  it("runs the three usage examples as a process and leaves no process and no file behind", async () => {
    assertFreshBuild();
    const result = await tunnel(["demo"], { env: { ...process.env, TMPDIR: privateTmp, NO_COLOR: "1" }, timeoutMs: 120_000 });
    expect(result.code, result.stderr).toBe(ExitCode.OK);
    const out = result.stdout;
    expect(out).toContain("1. A command with environment variables");
    expect(out).toMatch(/output:\n {4}LC_ALL=C\n/);
    expect(out).toContain("2. A deployment-style script");
    expect(out).toMatch(/Starting deployment to production\.\.\.\n {4}current -> .*\/releases\/.*\n {4}Deployment completed/);
    expect(out).toContain("3. An upload, verified with sha256, with progress");
    expect(out).toContain("progress: 100%");
    expect(out).toMatch(/uploaded 24\.\d MiB in \S+, attempts: 1, sha256 verified: true, mode on the host: 755/);
    // The console tracer reported each operation.
    expect(out).toMatch(/✓ deploy@127\.0\.0\.1:\d+ {2}command/);
    expect(out).toMatch(/✓ deploy@127\.0\.0\.1:\d+ {2}script/);
    expect(out).toMatch(/✓ deploy@127\.0\.0\.1:\d+ {2}transfer {2}upload/);
    expect(out).toContain("operations: 3, attempts: 3, retries: 0, failures: 0");
    expect(await readdir(privateTmp)).toEqual([]);
    expect(await processesMentioning(privateTmp)).toEqual([]);
  });

  it("with --json prints only JSON lines on stdout, one per operation, and the walk-through on stderr", async () => {
    assertFreshBuild();
    const result = await tunnel(["demo", "--json"], { env: { ...process.env, TMPDIR: privateTmp, NO_COLOR: "1" }, timeoutMs: 120_000 });
    expect(result.code, result.stderr).toBe(ExitCode.OK);
    const lines = result.stdout.split("\n").filter((line) => line !== "");
    const records = lines.map((line) => {
      try {
        return JSON.parse(line) as unknown;
      } catch {
        throw new Error(`stdout has a line that is not JSON: ${line}`);
      }
    });
    // One trace record per example, in order.
    expect(records.map((record) => (record as { name?: unknown }).name)).toEqual(["tunnel.command", "tunnel.script", "tunnel.transfer"]);
    expect(result.stderr).toContain("1. A command with environment variables");
    expect(result.stderr).toContain("operations: 3, attempts: 3, retries: 0, failures: 0");
    expect(await readdir(privateTmp)).toEqual([]);
  });

  it("cleans up and resolves with 130 when interrupted mid-way", async () => {
    const interrupt = new AbortController();
    const stdout = new Capture();
    const write = stdout.write.bind(stdout);
    stdout.write = (chunk: string) => {
      const written = write(chunk);
      if (chunk.includes("2. A deployment-style script")) interrupt.abort();
      return written;
    };
    const stderr = new Capture();
    const status = await runDemo({ stdout, stderr, env: { NO_COLOR: "1" }, format: "pretty", signal: interrupt.signal });
    expect(status).toBe(ExitCode.INTERRUPTED);
    expect(stderr.text).toContain("interrupted");
    expect(stdout.text).not.toContain("3. An upload");
    const workspace = /every file lives under (\S+), removed/.exec(stdout.text)?.[1];
    expect(workspace).toBeDefined();
    expect(existsSync(workspace ?? "/")).toBe(false);
  });
});
