import { spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { loginShellCommand } from "../../src/login-shell.js";
import { exitWaiterScript, parseWaiterReport, type WaiterReport } from "../../src/remote/exit-waiter.js";
import { STDIN_DONE_FRAME as DONE_FRAME, STDIN_END_FRAME as END_FRAME, StdinFramer, stdinSignalFrame as signalFrame } from "../../src/remote/stdin-frames.js";

/** A PATH with the tools the sh waiter and these commands use, but no perl. */
const noPerl = mkdtempSync(join(tmpdir(), "tunnel-openssh-frames-"));
for (const tool of ["sleep", "cat", "setsid", "kill", "head"]) {
  symlinkSync(
    spawnSync("sh", ["-c", `command -v ${tool}`])
      .stdout.toString()
      .trim(),
    join(noPerl, tool),
  );
}
afterAll(() => rmSync(noPerl, { recursive: true, force: true }));

interface Session {
  readonly markers: WaiterReport[];
  readonly started: Promise<{ pid: number; waiter: "perl" | "sh" }>;
  /** Resolves when the waiter process has exited and its output is complete. */
  readonly closed: Promise<{ code: number | null; stdout: Buffer }>;
  readonly report: Promise<WaiterReport>;
  write(frame: Buffer): void;
  /** Frames `data` as the client does (data frames, then the end-of-input frame). */
  send(data: Buffer): Promise<void>;
  end(): void;
  dropStdout(): void;
}

/** The framed session command, run the way sshd runs it: the login shell with -c, a group of its own, pipes. */
function session(command: string, path: string): Session {
  const nonce = `tunnel${randomBytes(12).toString("hex")}`;
  const child = spawn("/bin/sh", ["-c", loginShellCommand(exitWaiterScript(command, nonce, { framed: true }))], {
    env: { PATH: path, SHELL: "/bin/sh" },
    stdio: ["pipe", "pipe", "pipe"],
    detached: true,
  });
  child.stdin.on("error", () => undefined);
  const markers: WaiterReport[] = [];
  let resolveStarted!: (value: { pid: number; waiter: "perl" | "sh" }) => void;
  let resolveReport!: (marker: WaiterReport) => void;
  const started = new Promise<{ pid: number; waiter: "perl" | "sh" }>((resolve) => (resolveStarted = resolve));
  const report = new Promise<WaiterReport>((resolve) => (resolveReport = resolve));
  // The waiter's report lines, `<nonce>:<report>\n`, from stderr as they arrive.
  let stderr = "";
  child.stderr.on("data", (chunk: Buffer) => {
    stderr += chunk.toString("latin1");
    for (let end = stderr.indexOf("\n"); end !== -1; end = stderr.indexOf("\n")) {
      const line = stderr.slice(0, end);
      stderr = stderr.slice(end + 1);
      const at = line.indexOf(`${nonce}:`);
      const marker = at === -1 ? undefined : parseWaiterReport(line.slice(at + nonce.length + 1));
      if (!marker) continue;
      markers.push(marker);
      if (marker.kind === "pid") resolveStarted({ pid: marker.pid, waiter: marker.waiter ?? "sh" });
      else resolveReport(marker);
    }
  });
  const stdout: Buffer[] = [];
  child.stdout.on("data", (chunk: Buffer) => stdout.push(chunk));
  const closed = new Promise<{ code: number | null; stdout: Buffer }>((resolve) =>
    child.on("close", (code) => resolve({ code, stdout: Buffer.concat(stdout) })),
  );
  return {
    markers,
    started,
    closed,
    report,
    write: (frame) => child.stdin.write(frame),
    async send(data) {
      const { waiter } = await started;
      const framer = new StdinFramer(waiter);
      framer.pipe(child.stdin, { end: false });
      const done = new Promise<void>((resolve) => framer.on("end", resolve));
      framer.end(data);
      await done;
    },
    end: () => child.stdin.end(),
    dropStdout: () => child.stdout.destroy(),
  };
}

/** Is any process of group `pgid` left (zombies aside)? */
function groupAlive(pgid: number): boolean {
  const listing = spawnSync("ps", ["-e", "-o", "pgid=,stat="]).stdout.toString();
  return listing.split("\n").some((line) => {
    const [group, stat] = line.trim().split(/\s+/);
    return group === String(pgid) && stat !== undefined && !stat.startsWith("Z");
  });
}

const perlPath = process.env["PATH"] ?? "/usr/bin:/bin";

describe.each([
  ["perl", perlPath],
  ["sh", noPerl],
] as const)("the framed %s waiter", (waiter, path) => {
  it("runs under the waiter it names", async () => {
    const running = session("exit 0", path);
    expect((await running.started).waiter).toBe(waiter);
    running.write(DONE_FRAME);
    running.end();
    await running.closed;
  });

  it("passes binary stdin exactly, then its end, and the command runs on after EOF", async () => {
    const data = Buffer.concat([
      Buffer.from(Array.from({ length: 256 }, (_, byte) => byte)),
      randomBytes(waiter === "perl" ? 300_000 : 20_000),
      Buffer.from("-%\\\n'"),
    ]);
    const running = session("cat; echo after-eof", path);
    await running.send(data);
    expect(await running.report).toEqual({ kind: "exit", code: 0 });
    running.write(DONE_FRAME);
    running.end();
    const { code, stdout } = await running.closed;
    expect(code).toBe(0);
    expect(stdout.equals(Buffer.concat([data, Buffer.from("after-eof\n")]))).toBe(true);
  });

  it("a command reading part of its stdin gets exactly those bytes (head -c)", async () => {
    const running = session("head -c 5; echo; cat", path);
    await running.send(Buffer.from("abcdefgh"));
    expect(await running.report).toEqual({ kind: "exit", code: 0 });
    running.write(DONE_FRAME);
    running.end();
    expect((await running.closed).stdout.toString()).toBe("abcde\nfgh");
  });

  it("a signal frame reaches the command's whole group, background children too", async () => {
    const running = session("sleep 300 & sleep 301; echo done", path);
    running.write(END_FRAME);
    const { pid } = await running.started;
    running.write(signalFrame("TERM"));
    expect(await running.report).toMatchObject({ kind: "signal", signal: "SIGTERM" });
    running.write(DONE_FRAME);
    running.end();
    await running.closed;
    expect(groupAlive(pid)).toBe(false);
  });

  it("the end of the channel's stdin without the done frame stops the command (a closed channel)", async () => {
    const running = session("sleep 300 & sleep 301; echo done", path);
    const { pid } = await running.started;
    running.end();
    await running.closed;
    expect(groupAlive(pid)).toBe(false);
    expect(running.markers.some((marker) => marker.kind === "exit")).toBe(false);
  });

  it("the done frame after the report ends the waiter with the command's status, no signal sent", async () => {
    const running = session("exit 3", path);
    expect(await running.report).toEqual({ kind: "exit", code: 3 });
    running.write(DONE_FRAME);
    running.end();
    expect((await running.closed).code).toBe(3);
  });
});

describe("the framed perl waiter, beyond the sh one", () => {
  it("stops the command when the reader of its stdout is gone, even while nothing arrives on stdin", async () => {
    const running = session("sleep 300 & sleep 301; echo done", perlPath);
    const { pid } = await running.started;
    running.dropStdout();
    await running.closed;
    expect(groupAlive(pid)).toBe(false);
  });

  it("sees a signal frame behind megabytes of stdin the command never reads", async () => {
    const running = session("sleep 300", perlPath);
    const { pid } = await running.started;
    const data = randomBytes(3 * 1024 * 1024);
    running.write(Buffer.concat([Buffer.from(`d${data.length}\n`), data]));
    running.write(signalFrame("TERM"));
    expect(await running.report).toMatchObject({ kind: "signal", signal: "SIGTERM" });
    running.write(DONE_FRAME);
    running.end();
    await running.closed;
    expect(groupAlive(pid)).toBe(false);
  });
});
