import { spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readFileSync, readdirSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { loginShellCommand } from "../../src/login-shell.js";
import { toolFolder } from "../support/tool-folder.js";
import { exitWaiterScript, parseWaiterReport, type WaiterReport } from "../../src/remote/exit-waiter.js";
import {
  STDIN_DONE_FRAME as DONE_FRAME,
  STDIN_END_FRAME as END_FRAME,
  StdinFramer,
  commandFrame,
  stdinSignalFrame as signalFrame,
} from "../../src/remote/stdin-frames.js";

/** A PATH with the tools the sh waiter and these commands use, but no perl. */
const noPerl = toolFolder("tunnel-openssh-frames-", ["sleep", "cat", "setsid", "kill", "head"]);

interface Session {
  readonly markers: WaiterReport[];
  /** With `commandFromStdin`: the waiter is ready for its command frame. */
  readonly ready: Promise<"perl" | "sh">;
  readonly started: Promise<{ pid: number; waiter: "perl" | "sh" }>;
  /** Resolves when the waiter process has exited and its output is complete. */
  readonly closed: Promise<{ code: number | null; stdout: Buffer }>;
  readonly report: Promise<WaiterReport>;
  write(frame: Buffer): void;
  /** Frames `data` as the client does (data frames, then the end-of-input frame). */
  send(data: Buffer): Promise<void>;
  end(): void;
  dropStdout(): void;
  /** Let stderr flow (see `stderrFull`). */
  readStderr(): void;
  /** The session's local pid: its process group too. */
  readonly pid: number;
  /** Everything the session wrote to stderr so far, reports included, in order. */
  stderrText(): string;
}

/**
 * Runs the session command (`$1`) with its stderr a pipe that a process of the session fills first, and whose
 * reader stops itself at once: every later write to stderr, the waiter's reports too, blocks until the reader is
 * continued (SIGCONT to the session's group), then everything flows on to the real stderr.
 */
const STDERR_FULL = "exec 3>&1; { head -c 1048576 /dev/zero >&2 & exec /bin/sh -c \"$1\"; } 2>&1 >&3 3>&- | /bin/sh -c 'kill -STOP $$; exec cat >&2'";

/**
 * The framed session command, run the way sshd runs it: the login shell with -c, a group of its own, pipes. With
 * `stderrFull`, stderr blocks until `readStderr()` (see `STDERR_FULL`).
 */
interface SessionOptions {
  readonly stderrFull?: boolean;
  readonly commandFromStdin?: boolean;
  readonly relayStderr?: boolean;
  readonly requirePerl?: boolean;
  readonly reportServer?: boolean;
}

function session(command: string, path: string, options: SessionOptions = {}): Session {
  const nonce = `tunnel${randomBytes(12).toString("hex")}`;
  const line = loginShellCommand(
    exitWaiterScript(command, nonce, {
      framed: true,
      commandFromStdin: options.commandFromStdin === true,
      relayStderr: options.relayStderr === true,
      requirePerl: options.requirePerl === true,
      reportServer: options.reportServer === true,
    }),
  );
  const argv = options.stderrFull ? ["-c", STDERR_FULL, "sh", line] : ["-c", line];
  const child = spawn("/bin/sh", argv, {
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
  let resolveReady!: (waiter: "perl" | "sh") => void;
  const ready = new Promise<"perl" | "sh">((resolve) => (resolveReady = resolve));
  // The waiter's report lines, `<nonce>:<report>\n`, from stderr as they arrive.
  let stderr = "";
  let stderrText = "";
  child.stderr.on("data", (chunk: Buffer) => {
    stderrText += chunk.toString("latin1");
    // A filler's zeros (`stderrFull`) carry no newline: a report is found wherever it lands among them.
    stderr += chunk.toString("latin1").replace(/\0+/g, "");
    for (let end = stderr.indexOf("\n"); end !== -1; end = stderr.indexOf("\n")) {
      const line = stderr.slice(0, end);
      stderr = stderr.slice(end + 1);
      const at = line.indexOf(`${nonce}:`);
      const marker = at === -1 ? undefined : parseWaiterReport(line.slice(at + nonce.length + 1));
      if (!marker) continue;
      markers.push(marker);
      if (marker.kind === "ready") resolveReady(marker.waiter);
      else if (marker.kind === "pid") resolveStarted({ pid: marker.pid, waiter: marker.waiter ?? "sh" });
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
    ready,
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
    readStderr: () => process.kill(-(child.pid as number), "SIGCONT"),
    pid: child.pid as number,
    stderrText: () => stderrText,
  };
}

/** `/proc/<pid>/<name>`, or undefined once the process is gone. */
function procFile(pid: number, name: string): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/${name}`, "latin1");
  } catch {
    return undefined;
  }
}

/**
 * The process of the session below `root` that has moved to a process group of its own (the command's group, made
 * by the waiter) and is blocked writing to a pipe: the one about to report that group. Polls until there is one.
 */
async function blockedReporter(root: number): Promise<number> {
  for (;;) {
    const children = new Map<number, number[]>();
    const groups = new Map<number, number>();
    for (const entry of readdirSync("/proc")) {
      if (!/^\d+$/.test(entry)) continue;
      const stat = procFile(Number(entry), "stat");
      // pid (comm) state ppid pgrp ...; comm may hold spaces, so read after its closing parenthesis.
      const fields = stat?.slice(stat.lastIndexOf(")") + 2).split(" ");
      if (!fields) continue;
      const parent = Number(fields[1]);
      children.set(parent, [...(children.get(parent) ?? []), Number(entry)]);
      groups.set(Number(entry), Number(fields[2]));
    }
    const below: number[] = [];
    for (let queue = [root]; queue.length > 0;) {
      const next = children.get(queue.shift() as number) ?? [];
      below.push(...next);
      queue.push(...next);
    }
    const reporter = below.find((pid) => groups.get(pid) !== root && /pipe_write/.test(procFile(pid, "wchan") ?? ""));
    if (reporter !== undefined) return reporter;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Whether `pid` runs a handler of its own for SIGTERM (`SigCgt`, bit 15 - 1). */
function catchesTerm(pid: number): boolean {
  const caught = /^SigCgt:\s*([0-9a-f]+)$/m.exec(procFile(pid, "status") ?? "")?.[1] ?? "0";
  return (BigInt(`0x${caught}`) & (1n << 14n)) !== 0n;
}

/** Is any process of group `pgid` left (zombies aside)? */
/** A TERM frame stops the command: the waiter reports the signal, and nothing of group `pgid` is left once it closed. */
async function expectStoppedByTerm(running: Session, pgid: number): Promise<void> {
  running.write(signalFrame("TERM"));
  expect(await running.report).toMatchObject({ kind: "signal", signal: "SIGTERM" });
  running.write(DONE_FRAME);
  running.end();
  await running.closed;
  expect(groupAlive(pgid)).toBe(false);
}

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
    await expectStoppedByTerm(running, pid);
  });

  it("a signal frame sent as soon as the group is reported stops the command, even before its shell runs", async () => {
    // The report is out before the command's shell has started. Held right there (its write blocks on a full
    // stderr), the reporting process must already die of the signal a frame sends, not catch and lose it.
    const running = session("sleep 300 & sleep 301; echo done", path, { stderrFull: true });
    try {
      const reporter = await blockedReporter(running.pid);
      expect(catchesTerm(reporter)).toBe(false);
      const group = Number(procFile(reporter, "stat")?.split(") ")[1]?.split(" ")[2]);
      running.write(Buffer.concat([END_FRAME, signalFrame("TERM")]));
      running.readStderr();
      expect(await running.report).toMatchObject({ kind: "signal", signal: "SIGTERM" });
      running.write(DONE_FRAME);
      running.end();
      await running.closed;
      expect(groupAlive(group)).toBe(false);
    } finally {
      try {
        process.kill(-running.pid, "SIGKILL");
      } catch {
        // the filler and the session are gone already
      }
    }
  });

  it("the end of the channel's stdin without the done frame stops the command (a closed channel)", async () => {
    const running = session("sleep 300 & sleep 301; echo done", path);
    const { pid } = await running.started;
    running.end();
    await running.closed;
    expect(groupAlive(pid)).toBe(false);
    expect(running.markers.some((marker) => marker.kind === "exit")).toBe(false);
  });

  it("started ahead of its command, reports ready, then runs the command frame it reads, with the stdin behind it", async () => {
    const running = session("", path, { commandFromStdin: true });
    const ready = await running.ready;
    expect(ready).toBe(waiter);
    expect(running.markers.some((marker) => marker.kind === "pid")).toBe(false);
    // The frames behind the command arrive in the same write: the waiter must not read them as part of it.
    const command = "printf '%s|' 'a\\b' '%%'; cat; echo; exit 7\n\n";
    const data = Buffer.concat([Buffer.from("line one\n-%\\'\n"), randomBytes(2_000)]);
    running.write(commandFrame(command, ready));
    await running.send(data);
    expect(await running.report).toEqual({ kind: "exit", code: 7 });
    running.write(DONE_FRAME);
    running.end();
    const { stdout } = await running.closed;
    expect(stdout.equals(Buffer.concat([Buffer.from("a\\b|%%|"), data, Buffer.from("\n")]))).toBe(true);
  });

  it("started ahead of its command, runs nothing when the channel's stdin ends before the command frame", async () => {
    const running = session("", path, { commandFromStdin: true });
    await running.ready;
    running.end();
    expect((await running.closed).code).toBe(0);
    expect(running.markers.map((marker) => marker.kind)).toEqual(["ready"]);
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
    await expectStoppedByTerm(running, pid);
  });
});

describe("the framed perl waiter relaying the command's stderr (a ControlMaster's own session)", () => {
  it("reports how the command ended only after everything on its stderr, a background writer's too", async () => {
    const running = session("echo err >&2; (sleep 0.3; echo late >&2) & exit 4", perlPath, { relayStderr: true });
    expect(await running.report).toEqual({ kind: "exit", code: 4 });
    const text = running.stderrText();
    // The report is the last line: the background writer's line, written after the command's exit, comes before it.
    expect(text.indexOf("late\n")).toBeGreaterThan(text.indexOf("err\n"));
    expect(text.endsWith(`:exit:4\n`)).toBe(true);
    running.write(DONE_FRAME);
    running.end();
    expect((await running.closed).code).toBe(4);
  });

  it("passes stderr bytes on exactly and still reports signals", async () => {
    const bytes = "printf 'no newline \\001\\377' >&2; kill -TERM $$";
    const running = session(bytes, perlPath, { relayStderr: true });
    expect(await running.report).toMatchObject({ kind: "signal", signal: "SIGTERM" });
    expect(running.stderrText()).toContain("no newline \u0001\u00ff");
    running.write(DONE_FRAME);
    running.end();
    await running.closed;
  });

  it("with reportServer, first names the login shell's parent (the server's session process), then gets ready", async () => {
    const running = session("", perlPath, { commandFromStdin: true, relayStderr: true, requirePerl: true, reportServer: true });
    expect(await running.ready).toBe("perl");
    // Here the session's parent is this test process.
    expect(running.markers[0]).toEqual({ kind: "server", name: readFileSync(`/proc/${process.pid}/comm`, "latin1").trim() });
    running.end();
    expect((await running.closed).code).toBe(0);
  });

  it("with requirePerl, runs and reports nothing on a host without perl", async () => {
    const running = session("", noPerl, { commandFromStdin: true, relayStderr: true, requirePerl: true });
    expect((await running.closed).code).toBe(0);
    expect(running.markers).toEqual([]);
  });
});
