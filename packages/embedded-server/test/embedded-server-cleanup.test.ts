import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect, it } from "vitest";
import { startTestServer } from "@tunnel-sh/embedded-server";

it("removes the key folder a dead test process left behind when the next server starts", async () => {
  // A process that has exited: its pid names no live process (for now).
  const gone = spawnSync("/bin/sh", ["-c", "echo $$"], { encoding: "utf8" });
  const pid = Number(gone.stdout.trim());
  const stale = join(tmpdir(), `tunnel-test-server-${pid}-stale`);
  const ours = join(tmpdir(), `tunnel-test-server-${process.pid}-ours`);
  await mkdir(stale, { recursive: true });
  await mkdir(ours, { recursive: true });
  const server = await startTestServer();
  try {
    expect(existsSync(stale)).toBe(false);
    expect(existsSync(ours)).toBe(true);
    expect(server.dir.startsWith(join(tmpdir(), `tunnel-test-server-${process.pid}-`))).toBe(true);
  } finally {
    await server.close();
    await rm(ours, { recursive: true, force: true });
  }
});
