import { spawn, spawnSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { killGroupScript, killNamingScript, killSudoGroupsScript } from "../../src/remote/kill.js";

/** Live (not zombie) processes whose arguments are exactly `args`. */
function alive(args: string): number[] {
  const found: number[] = [];
  for (const line of spawnSync("ps", ["-eo", "pid=,stat=,args="]).stdout.toString().split("\n")) {
    const match = /^\s*(\d+)\s+(\S+)\s+(.*)$/.exec(line);
    if (match && !match[2]!.startsWith("Z") && match[3]!.trim() === args) found.push(Number(match[1]));
  }
  return found;
}

async function gone(args: string): Promise<number[]> {
  for (let tries = 0; tries < 100 && alive(args).length > 0; tries++) await new Promise((resolve) => setTimeout(resolve, 50));
  return alive(args);
}

const marker = () => `${300 + Math.floor(Math.random() * 600)}.${Math.floor(Math.random() * 90) + 10}`;

describe("killGroupScript", () => {
  it("signals a whole process group, background children too, and exits 0", async () => {
    const seconds = marker();
    const group = spawn("/bin/sh", ["-c", `sleep ${seconds} & sleep ${seconds}`], { detached: true, stdio: "ignore" });
    const closed = new Promise((resolve) => group.on("close", resolve));
    for (let tries = 0; tries < 100 && alive(`sleep ${seconds}`).length < 2; tries++) await new Promise((resolve) => setTimeout(resolve, 20));
    expect(alive(`sleep ${seconds}`)).toHaveLength(2);
    expect(spawnSync("/bin/sh", ["-c", killGroupScript("TERM", group.pid!)]).status).toBe(0);
    await closed;
    expect(await gone(`sleep ${seconds}`)).toEqual([]);
  });

  it("exits 0 for a group that is already gone", () => {
    const done = spawnSync("/bin/sh", ["-c", "echo $$"]);
    const pid = Number(done.stdout.toString().trim());
    expect(spawnSync("/bin/sh", ["-c", killGroupScript("KILL", pid)]).status).toBe(0);
  });

  it("refuses a signal name or group that is not one, before building anything", () => {
    expect(() => killGroupScript("TERM; rm -rf /", 42)).toThrow(TypeError);
    expect(() => killGroupScript("TERM", 1)).toThrow(TypeError);
    expect(() => killGroupScript("TERM", 4.5)).toThrow(TypeError);
  });
});

describe("killNamingScript", () => {
  it("kills what names tunnel-<kind>.<token> in its command line, not itself, and exits 0", async () => {
    const token = `a${Date.now().toString(16)}`;
    // A shell waiting in a builtin (no child to leave behind), named by the folder as its $0.
    const args = `/bin/sh -c read line /tmp/tunnel-script.${token}/script`;
    const victim = spawn("/bin/sh", ["-c", "read line", `/tmp/tunnel-script.${token}/script`], { stdio: ["pipe", "ignore", "ignore"] });
    const closed = new Promise<NodeJS.Signals | null>((resolve) => victim.on("close", (_code, signal) => resolve(signal)));
    for (let tries = 0; tries < 100 && alive(args).length === 0; tries++) await new Promise((resolve) => setTimeout(resolve, 20));
    const run = spawnSync("/bin/sh", ["-c", killNamingScript("script", token)]);
    expect(run.status).toBe(0);
    expect(await closed).toBe("SIGKILL");
  });

  it("refuses a kind or token with anything but letters and digits", () => {
    expect(() => killNamingScript("script", "x|y")).toThrow(TypeError);
    expect(() => killNamingScript("Script-1", "abc")).toThrow(TypeError);
  });
});

describe("killSudoGroupsScript", () => {
  it("is valid sh that exits 0 when no sudo process carries the nonce", () => {
    for (const signal of ["TERM", "KILL"]) {
      expect(spawnSync("/bin/sh", ["-n", "-c", killSudoGroupsScript("0123abcd", signal)]).status).toBe(0);
      expect(spawnSync("/bin/sh", ["-c", killSudoGroupsScript("0123abcdnotrunning", signal)]).status).toBe(0);
    }
    expect(killSudoGroupsScript("0123abcd", "KILL")).toContain("kill -s KILL");
  });

  it("refuses a nonce that is not letters and digits, and a word that is not a signal name", () => {
    expect(() => killSudoGroupsScript("a.*b", "TERM")).toThrow(TypeError);
    expect(() => killSudoGroupsScript("0123abcd", "TERM; rm -rf /")).toThrow(TypeError);
  });
});
