import { spawnSync, type SpawnSyncOptions } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { loginShellCommand } from "../../src/login-shell.js";
import { exitWaiterScript, parseWaiterReport } from "../../src/remote/exit-waiter.js";

const newNonce = () => `tunnel${randomBytes(12).toString("hex")}`;

describe("parseWaiterReport", () => {
  it("parses reports", () => {
    expect(parseWaiterReport("pid:7:sh")).toEqual({ kind: "pid", pid: 7, waiter: "sh" });
    expect(parseWaiterReport("exit:0")).toEqual({ kind: "exit", code: 0 });
    expect(parseWaiterReport("exit:255")).toEqual({ kind: "exit", code: 255 });
    expect(parseWaiterReport("server:dropbear")).toEqual({ kind: "server", name: "dropbear" });
    expect(parseWaiterReport("server:")).toEqual({ kind: "server", name: "" });
    expect(parseWaiterReport("server:a b:c")).toEqual({ kind: "server", name: "a b:c" });
    expect(parseWaiterReport("signal:9:KILL")).toEqual({ kind: "signal", number: 9, signal: "SIGKILL" });
    // A name the host's perl could not give: the number is kept for the caller to map.
    expect(parseWaiterReport("signal:9:")).toEqual({ kind: "signal", number: 9, signal: null });
  });
});

/** Run the session command the way sshd would: the login shell runs the line with -c. */
function run(command: string, path = process.env["PATH"] ?? "/usr/bin:/bin", exact = true, loginShell = "/bin/sh", group = true) {
  const nonce = newNonce();
  // Its own process group, as sshd gives a session command (spawnSync honours `detached`; its type omits it).
  const options: SpawnSyncOptions = { env: { PATH: path, SHELL: loginShell }, stdio: ["ignore", "pipe", "pipe"], timeout: 20_000 };
  Object.assign(options, { detached: true });
  const result = spawnSync(loginShell, ["-c", loginShellCommand(exitWaiterScript(command, nonce, { exact, group }))], options);
  const stderr = String(result.stderr);
  const markers = [...stderr.matchAll(new RegExp(`${nonce}:([^\\n]*)\\n`, "g"))].map((match) => parseWaiterReport(match[1]!));
  return { nonce, stdout: String(result.stdout), stderr, markers, status: result.status };
}

const perl = spawnSync("sh", ["-c", "command -v perl"]).status === 0;

describe("exitWaiterScript with perl on the host: exact status for every code and signal", () => {
  it("has perl here (Debian's perl-base), so this suite is meaningful", () => {
    expect(perl).toBe(true);
  });

  it("reports exit codes as exits, never as signals, across 0-255 and around the 128+N range", () => {
    for (const code of [0, 1, 2, 42, 126, 127, 128, 129, 130, 137, 143, 192, 193, 254, 255]) {
      const { markers } = run(`exit ${code}`);
      expect(markers[0], `exit ${code}`).toMatchObject({ kind: "pid", waiter: "perl" });
      expect(markers[1], `exit ${code}`).toEqual({ kind: "exit", code });
    }
  });

  it.each(["INT", "TERM", "KILL", "HUP", "QUIT", "USR1", "SEGV", "PIPE"])("reports kill -%s $$ as that signal", (signal) => {
    const { markers, stderr } = run(`kill -${signal} $$; echo not-reached`);
    expect(markers.at(-1)).toMatchObject({ kind: "signal", signal: `SIG${signal}` });
    expect(stderr).not.toMatch(/Terminated|Killed/);
  });

  it("survives a signal to the whole process group and reports the command's death by it", () => {
    const { markers } = run("kill -TERM 0; sleep 5");
    expect(markers.at(-1)).toMatchObject({ kind: "signal", signal: "SIGTERM" });
  });

  it.each(["/bin/sh", "/usr/bin/fish", "/usr/bin/tcsh", "/usr/bin/mksh", "/usr/bin/zsh"])(
    "runs the command in /bin/sh -c under login shell %s, with its own $$, stdout and arguments intact",
    (loginShell) => {
      const { markers, stdout, stderr } = run(`printf '%s|' "it's" 'a b' "$0" ! "$(echo x)"; [ "$$" != "$PPID" ] && echo own-pid`, undefined, true, loginShell);
      expect(stderr.replace(/tunnel[0-9a-f]+:[^\n]*\n/g, "")).toBe("");
      expect(stdout).toBe("it's|a b|sh|!|x|own-pid\n");
      expect(markers.at(-1)).toEqual({ kind: "exit", code: 0 });
    },
  );

  it("puts the command in a process group of its own and reports that group, unless told not to (pty)", () => {
    const grouped = run("ps -o pgid= -p $$", undefined, true);
    const pid = grouped.markers[0];
    expect(pid).toMatchObject({ kind: "pid", waiter: "perl" });
    expect(grouped.stdout.trim()).toBe(String((pid as { pid: number }).pid));
    const shared = run("echo $$; ps -o pgid= -p $$", undefined, true, "/bin/sh", false);
    const [own, group] = shared.stdout.trim().split(/\s+/);
    expect(group).not.toBe(own);
    expect(String((shared.markers[0] as { pid: number }).pid)).toBe(group);
  });
});

describe("exitWaiterScript without perl: the sh fallback", () => {
  // A PATH with the tools a shell needs but no perl.
  const bin = mkdtempSync(join(tmpdir(), "tunnel-openssh-noperl-"));
  for (const tool of ["sleep", "printf", "cat"])
    symlinkSync(
      spawnSync("sh", ["-c", `command -v ${tool}`])
        .stdout.toString()
        .trim() || `/bin/${tool}`,
      join(bin, tool),
    );
  afterAll(() => rmSync(bin, { recursive: true, force: true }));

  it.each([
    ["exit 0", { kind: "exit", code: 0 }],
    ["exit 42", { kind: "exit", code: 42 }],
    ["exit 255", { kind: "exit", code: 255 }],
    ["kill -TERM $$", { kind: "signal", number: 15, signal: "SIGTERM" }],
    ["kill -KILL $$", { kind: "signal", number: 9, signal: "SIGKILL" }],
    // The documented limit: a POSIX shell's $? cannot tell exit 130 from a death by SIGINT.
    ["exit 130", { kind: "signal", number: 2, signal: "SIGINT" }],
  ])("%s reports %j", (command, report) => {
    const { markers, stderr } = run(command, bin);
    expect(markers[0]).toMatchObject({ kind: "pid", waiter: "sh" });
    expect(markers.at(-1)).toEqual(report);
    expect(stderr).not.toMatch(/Terminated|Killed/);
  });

  it("gives the command a group of its own through setsid, and reports it", () => {
    symlinkSync(spawnSync("sh", ["-c", "command -v setsid"]).stdout.toString().trim(), join(bin, "setsid"));
    symlinkSync(spawnSync("sh", ["-c", "command -v ps"]).stdout.toString().trim(), join(bin, "ps"));
    const { markers, stdout } = run("ps -o pgid= -p $$", bin);
    expect(markers[0]).toMatchObject({ kind: "pid", waiter: "sh" });
    expect(stdout.trim()).toBe(String((markers[0] as { pid: number }).pid));
    expect(markers.at(-1)).toEqual({ kind: "exit", code: 0 });
  });

  it("is what exactExitStatus: false asks for, even where perl exists", () => {
    const { markers } = run("exit 3", undefined, false);
    expect(markers).toEqual([expect.objectContaining({ kind: "pid", waiter: "sh" }), { kind: "exit", code: 3 }]);
  });
});
