import { spawn, spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { loginShellCommand } from "../../src/login-shell.js";
import { toolFolder } from "../support/tool-folder.js";
import { inOwnProcessGroup } from "../../src/remote/process-group.js";

/** Pids of live (not zombie) `sleep <marker>` processes. */
function alive(marker: string): number[] {
  const found: number[] = [];
  for (const line of spawnSync("ps", ["-eo", "pid=,stat=,args="]).stdout.toString().split("\n")) {
    const match = /^\s*(\d+)\s+(\S+)\s+(.*)$/.exec(line);
    if (match && !match[2]!.startsWith("Z") && match[3]!.trim() === `sleep ${marker}`) found.push(Number(match[1]));
  }
  return found;
}

/**
 * Starts the script the way dropbear does: through the login shell, as a process that is NOT a group leader (it
 * shares this test's group), so a signal to its pid is all a server's `signal` request delivers.
 */
function session(script: string, path = "/usr/bin:/bin") {
  const child = spawn("/bin/sh", ["-c", loginShellCommand(inOwnProcessGroup(script))], { env: { PATH: path }, stdio: ["pipe", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>((resolve) =>
    child.on("close", (code, signal) => resolve({ code, signal, stdout, stderr })),
  );
  const printed = (text: string) =>
    new Promise<void>((resolve) => {
      const check = () => (stdout.includes(text) ? resolve() : setTimeout(check, 20));
      check();
    });
  return { child, done, printed };
}

/** The `sleep <marker>` processes once `count` of them run: "started" is printed before the shells' forks have exec'd. */
async function sleeping(marker: string, count: number): Promise<number[]> {
  for (let tries = 0; tries < 200 && alive(marker).length < count; tries++) await new Promise((resolve) => setTimeout(resolve, 50));
  return alive(marker);
}

async function gone(marker: string): Promise<number[]> {
  for (let tries = 0; tries < 100 && alive(marker).length > 0; tries++) await new Promise((resolve) => setTimeout(resolve, 50));
  return alive(marker);
}

const noPerl = toolFolder("tunnel-group-noperl-", ["setsid", "sleep", "cat", "ps"]);

describe.each([
  ["with perl", "/usr/bin:/bin"],
  ["without perl (setsid)", noPerl],
])("inOwnProcessGroup %s", (_name, path) => {
  it("passes a signal to the session's pid on to the whole command, background jobs too, and dies of it", async () => {
    const marker = `${400 + Math.floor(Math.random() * 500)}.7`;
    const running = session(`sleep ${marker} & echo started; sleep ${marker}; echo done`, path);
    await running.printed("started");
    expect((await sleeping(marker, 2)).length).toBe(2);
    running.child.kill("SIGTERM");
    const result = await running.done;
    expect(result).toMatchObject({ code: null, signal: "SIGTERM", stdout: "started\n", stderr: "" });
    expect(await gone(marker)).toEqual([]);
  });

  it("ends the way the command did, and keeps its stdin", async () => {
    const exited = session("cat; exit 3", path);
    exited.child.stdin.end("input\n");
    expect(await exited.done).toMatchObject({ code: 3, signal: null, stdout: "input\n", stderr: "" });
    const killed = session("kill -KILL $$", path);
    killed.child.stdin.end();
    expect(await killed.done).toMatchObject({ code: null, signal: "SIGKILL" });
  });

  it("runs the command in a group of its own", async () => {
    const running = session("ps -o pgid= -p $$; echo $$", path);
    running.child.stdin.end();
    const [group, pid] = (await running.done).stdout.trim().split(/\s+/);
    expect(group).toBe(pid);
    expect(group).not.toBe(String(readFileSync(`/proc/${process.pid}/stat`, "utf8").split(") ")[1]?.split(" ")[2]));
  });
});

it("tells exit 130 from a death by SIGINT with perl", async () => {
  const running = session("exit 130");
  running.child.stdin.end();
  expect(await running.done).toMatchObject({ code: 130, signal: null });
});

it("on a terminal (a pty, sudo's use_pty) runs the script as it is, in the terminal's foreground group", () => {
  // util-linux `script` gives the shell a fresh pty; the script prints its own group and the terminal's foreground one.
  const line = loginShellCommand(inOwnProcessGroup("echo $(ps -o pgid= -p $$) $(ps -o tpgid= -p $$)"));
  const result = spawnSync("script", ["-qec", line, "/dev/null"], { encoding: "utf8", env: { PATH: "/usr/bin:/bin" } });
  const [group, foreground] = result.stdout.trim().split(/\s+/);
  expect(group).toMatch(/^\d+$/);
  expect(group).toBe(foreground);
});
