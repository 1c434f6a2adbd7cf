import { spawn } from "node:child_process";
import { describe, expect, it } from "vitest";
import { loginShellCommand } from "../../src/login-shell.js";
import { SESSION_GROUP_PROBE, parseSessionGroupProbe } from "../../src/remote/process-group.js";

/**
 * Runs the probe through a login shell the way a server does: `detached` makes the session's command a
 * process-group leader (OpenSSH), without it the command shares this test's group (dropbear).
 */
function probe(loginShell: string, leader: boolean): Promise<string> {
  const child = spawn(loginShell, ["-c", loginShellCommand(SESSION_GROUP_PROBE)], { detached: leader, stdio: ["ignore", "pipe", "inherit"] });
  let stdout = "";
  child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
  return new Promise((resolve, reject) => {
    child.on("error", reject);
    child.on("close", () => resolve(stdout));
  });
}

describe("the session group probe", () => {
  for (const loginShell of ["/bin/sh", "/bin/bash"]) {
    it(`prints group for a session command that leads its group, pid for one that does not (${loginShell})`, async () => {
      expect(await probe(loginShell, true)).toBe("group\n");
      expect(await probe(loginShell, false)).toBe("pid\n");
    });
  }

  it("reads group and pid, and nothing else, from the probe's output", () => {
    expect(parseSessionGroupProbe("group\n")).toBe(true);
    expect(parseSessionGroupProbe("pid\n")).toBe(false);
    expect(parseSessionGroupProbe("")).toBeUndefined();
    expect(parseSessionGroupProbe("This account is restricted\n")).toBeUndefined();
  });
});
