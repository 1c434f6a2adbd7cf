import { spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { loginShellCommand } from "../../src/login-shell.js";
import { parseWaiterReport, type WaiterReport } from "../../src/remote/exit-waiter.js";
import { WorkerOutputReader, sessionWorkerScript } from "../../src/remote/session-worker.js";
import { STDIN_DONE_FRAME, STDIN_END_FRAME, StdinFramer, commandFrame, stdinSignalFrame } from "../../src/remote/stdin-frames.js";
import { toolFolder } from "../support/tool-folder.js";

/** A PATH with a shell's usual tools but no perl. */
const noPerl = toolFolder("tunnel-worker-noperl-", ["sleep", "cat"]);

interface Ran {
  readonly stdout: string;
  readonly stderr: string;
  readonly report: WaiterReport;
  readonly pid: number;
}

/** The worker session run as sshd runs a session command: the login shell with -c, a group of its own, pipes. */
function worker(path = process.env["PATH"] ?? "/usr/bin:/bin", idleSeconds?: number) {
  const nonce = `tunnel${randomBytes(12).toString("hex")}`;
  const child = spawn("/bin/sh", ["-c", loginShellCommand(sessionWorkerScript(nonce, idleSeconds))], {
    env: { PATH: path, SHELL: "/bin/sh" },
    stdio: ["pipe", "pipe", "pipe"],
    detached: true,
  });
  child.stdin.on("error", () => undefined);
  let stdout: Buffer[] = [];
  let stderr = "";
  let pending = "";
  const reports: WaiterReport[] = [];
  let waiting: (() => void) | undefined;
  let outputEnded = false;
  const reader = new WorkerOutputReader({
    data: (chunk) => stdout.push(Buffer.from(chunk)),
    end: () => {
      outputEnded = true;
      waiting?.();
    },
    error: (reason) => reports.push({ kind: "server", name: `broken: ${reason}` }),
  });
  child.stdout.on("data", (chunk: Buffer) => reader.write(chunk));
  child.stderr.on("data", (chunk: Buffer) => {
    pending += chunk.toString("latin1");
    for (;;) {
      const at = pending.indexOf(`${nonce}:`);
      const end = at === -1 ? -1 : pending.indexOf("\n", at);
      if (end === -1) break;
      stderr += pending.slice(0, at);
      const report = parseWaiterReport(pending.slice(at + nonce.length + 1, end));
      pending = pending.slice(end + 1);
      if (report) reports.push(report);
      waiting?.();
    }
    if (!pending.includes(nonce.slice(0, 6)) && pending.length > 0) {
      stderr += pending;
      pending = "";
    }
  });
  const closed = new Promise<number | null>((resolve) => child.on("close", (code) => resolve(code)));
  const until = (predicate: () => boolean) =>
    new Promise<void>((resolve) => {
      if (predicate()) return resolve();
      waiting = () => {
        if (!predicate()) return;
        waiting = undefined;
        resolve();
      };
    });
  return {
    child,
    closed,
    reports,
    ready: () => until(() => reports.some((report) => report.kind === "ready")),
    write: (bytes: Buffer) => child.stdin.write(bytes),
    /** Runs one command: its frame (and the stdin frames in the same write), then waits for its end and report. */
    async run(command: string, stdin?: Buffer, beforeEnd?: (pid: number) => Promise<void>): Promise<Ran> {
      stdout = [];
      stderr = "";
      outputEnded = false;
      const from = reports.length;
      const frames = [commandFrame(command, "perl")];
      if (stdin !== undefined) {
        const framer = new StdinFramer("perl");
        const parts: Buffer[] = [];
        framer.on("data", (chunk: Buffer) => parts.push(chunk));
        framer.end(stdin);
        await new Promise((resolve) => framer.on("end", resolve));
        frames.push(...parts);
      } else frames.push(STDIN_END_FRAME);
      // The command's frame and its stdin's end in one write: the worker must not wait for more to close its stdin.
      child.stdin.write(Buffer.concat(frames));
      await until(() => reports.slice(from).some((report) => report.kind === "pid"));
      const pid = (reports.slice(from).find((report) => report.kind === "pid") as { pid: number }).pid;
      await beforeEnd?.(pid);
      await until(() => outputEnded && reports.slice(from).some((report) => report.kind === "exit" || report.kind === "signal"));
      const report = reports.slice(from).find((entry) => entry.kind === "exit" || entry.kind === "signal")!;
      child.stdin.write(STDIN_DONE_FRAME);
      return { stdout: Buffer.concat(stdout).toString("latin1"), stderr, report, pid };
    },
    stdoutBytes: () => Buffer.concat(stdout),
  };
}

function groupAlive(pgid: number): boolean {
  const listing = spawnSync("ps", ["-e", "-o", "pgid=,stat="]).stdout.toString();
  return listing.split("\n").some((line) => {
    const [group, stat] = line.trim().split(/\s+/);
    return group === String(pgid) && stat !== undefined && !stat.startsWith("Z");
  });
}

describe("the session worker", () => {
  it("runs command after command, each in a group of its own, with exact output, stderr and status", async () => {
    const session = worker();
    await session.ready();
    const cases: Array<[string, Partial<Ran> & { report: WaiterReport }]> = [
      ["echo out; echo err >&2; exit 3", { stdout: "out\n", stderr: "err\n", report: { kind: "exit", code: 3 } }],
      ["exit 130", { stdout: "", report: { kind: "exit", code: 130 } }],
      ["kill -INT $$", { stdout: "", report: { kind: "signal", number: 2, signal: "SIGINT" } }],
      ["printf 'o3\\nabc'", { stdout: "o3\nabc", report: { kind: "exit", code: 0 } }],
      ["cat", { stdout: "", report: { kind: "exit", code: 0 } }],
    ];
    const pids = new Set<number>();
    for (const [command, expected] of cases) {
      const ran = await session.run(command);
      expect(ran).toMatchObject(expected);
      pids.add(ran.pid);
    }
    // One worker, a new group per command.
    expect(pids.size).toBe(cases.length);
    session.child.stdin.end();
    expect(await session.closed).toBe(0);
  });

  it("passes stdin exactly, every byte value, and megabytes of stdout", async () => {
    const session = worker();
    await session.ready();
    const every = Buffer.from(Array.from({ length: 256 }, (_, byte) => byte));
    const payload = Buffer.concat(Array.from({ length: 4096 }, () => every));
    await session.run("cat", payload);
    expect(session.stdoutBytes().equals(payload)).toBe(true);
    const big = await session.run("head -c 5000000 /dev/zero | tr '\\0' x");
    expect(big.stdout.length).toBe(5_000_000);
    expect(big.report).toEqual({ kind: "exit", code: 0 });
    session.child.stdin.end();
    await session.closed;
  });

  it("skips what the client sent the last command after its report, and runs the next command", async () => {
    const session = worker();
    await session.ready();
    await session.run("true");
    // Late stdin, a late signal (never sent to a group that is gone) and a second done frame, then the next command.
    session.write(Buffer.concat([Buffer.from("d4\nlateq\n", "latin1"), stdinSignalFrame("KILL"), STDIN_END_FRAME, STDIN_DONE_FRAME]));
    expect(await session.run("echo next")).toMatchObject({ stdout: "next\n", report: { kind: "exit", code: 0 } });
    session.child.stdin.end();
    expect(await session.closed).toBe(0);
  });

  it("a signal frame reaches the running command's group", async () => {
    const session = worker();
    await session.ready();
    const armed = async () => {
      while (!session.stdoutBytes().toString().includes("armed")) await new Promise((resolve) => setTimeout(resolve, 10));
      session.write(stdinSignalFrame("USR1"));
    };
    const ran = await session.run("trap 'exit 9' USR1; echo armed; while :; do sleep 0.05; done", Buffer.alloc(0), armed);
    expect(ran.report).toEqual({ kind: "exit", code: 9 });
    session.child.stdin.end();
    await session.closed;
  });

  it("the end of its stdin without the done frame stops the running command and ends the worker", async () => {
    const session = worker();
    await session.ready();
    session.write(Buffer.concat([commandFrame("sleep 30", "perl"), STDIN_END_FRAME]));
    await new Promise<void>((resolve) => {
      const check = () => (session.reports.some((report) => report.kind === "pid") ? resolve() : setTimeout(check, 10));
      check();
    });
    const pid = (session.reports.find((report) => report.kind === "pid") as { pid: number }).pid;
    expect(groupAlive(pid)).toBe(true);
    session.child.stdin.end();
    expect(await session.closed).toBe(0);
    expect(groupAlive(pid)).toBe(false);
  });

  it("leaves on its own, having run nothing more, once no command came for its idle time", async () => {
    const session = worker(undefined, 1);
    await session.ready();
    await session.run("true");
    const reports = session.reports.length;
    expect(await session.closed).toBe(0);
    expect(session.reports.length).toBe(reports);
  });

  it("exits at once, running nothing, on a host without perl or on a frame that is not a command", async () => {
    const bare = worker(noPerl);
    expect(await bare.closed).toBe(0);
    expect(bare.reports).toEqual([]);
    const confused = worker();
    await confused.ready();
    confused.write(Buffer.from("hello\n"));
    expect(await confused.closed).toBe(0);
    expect(confused.reports).toEqual([{ kind: "ready", waiter: "perl" }]);
  });
});

describe("WorkerOutputReader", () => {
  const read = (chunks: string[]) => {
    const events: string[] = [];
    const reader = new WorkerOutputReader({
      data: (chunk) => events.push(`data:${Buffer.from(chunk).toString("latin1")}`),
      end: () => events.push("end"),
      error: () => events.push("error"),
    });
    for (const chunk of chunks) reader.write(Buffer.from(chunk, "latin1"));
    return events;
  };

  it("reads frames split anywhere across chunks, and one command's end after another", () => {
    expect(read(["o", "5\nab", "c\n\no", "0\n", "o2\nhi", "o0\n"])).toEqual(["data:ab", "data:c\n\n", "end", "data:hi", "end"]);
  });

  it("calls anything that is not its frames an error and reads no further", () => {
    expect(read(["hello\n", "o2\nhi"])).toEqual(["error"]);
    expect(read(["o99999999999999999999999999"])).toEqual(["error"]);
    expect(read(["ox"])).toEqual(["error"]);
  });
});
