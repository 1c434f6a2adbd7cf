import { spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect, it } from "vitest";
import { startSshd } from "@tunnel-sh/testing";
import { isAlive } from "../src/process-table.js";

// Runs in its own test file: the sweep happens at the first start in a process.
it("cleans up instances whose owner process is gone, and only those", async () => {
  const stale = await mkdtemp(join(tmpdir(), "tunnel-sshd-"));
  const owned = await mkdtemp(join(tmpdir(), "tunnel-sshd-"));
  // An owner pid past the kernel's pid_max: certainly not running.
  await writeFile(join(stale, "owner"), "4194305 1\n");
  await writeFile(join(owned, "owner"), `${process.pid}\n`);
  // Stands in for the stale instance's listener: its command line names the instance's config like sshd's does.
  const listener = spawn("perl", ["-e", "sleep 60", "--", "-f", join(stale, "sshd_config")], { stdio: "ignore" });
  const running = Date.now() + 20_000;
  while (!readFileSync(`/proc/${listener.pid}/cmdline`, "utf8").includes("sshd_config") && Date.now() < running) {
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  const sshd = await startSshd();
  try {
    expect(existsSync(stale)).toBe(false);
    const deadline = Date.now() + 20_000;
    while (isAlive(listener.pid ?? 0) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
    expect(isAlive(listener.pid ?? 0)).toBe(false);
    expect(existsSync(owned)).toBe(true);
    expect(existsSync(join(sshd.dir, "owner"))).toBe(true);
  } finally {
    listener.kill("SIGKILL");

    await sshd.stop();
    await rm(owned, { recursive: true, force: true });
    await rm(stale, { recursive: true, force: true });
  }
});
