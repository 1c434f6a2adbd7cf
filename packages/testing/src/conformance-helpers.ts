/**
 * Helpers the transport conformance cases share: reading raw processes, waiting with a bound, and finding (and
 * cleaning up after) the processes a case starts on the server, which runs on this machine.
 */
import { setTimeout as sleep } from "node:timers/promises";
import type { Connection, RemoteProcess, Target, Transport } from "@tunnel-sh/core";
import { ancestorsOf, isAlive, startTimeOf } from "./process-table.js";

export const MiB = 1024 * 1024;

export interface Collected {
  readonly stdout: Buffer;
  readonly stderr: Buffer;
  readonly status: { exitCode: number | null; signal: string | null };
}

/** Read a raw process to the end: bytes, not text. */
export async function collect(remote: RemoteProcess): Promise<Collected> {
  const stdout: Buffer[] = [];
  const stderr: Buffer[] = [];
  remote.stdout.on("data", (chunk: Buffer) => stdout.push(chunk));
  remote.stderr.on("data", (chunk: Buffer) => stderr.push(chunk));
  const status = await remote.exit;
  return { stdout: Buffer.concat(stdout), stderr: Buffer.concat(stderr), status };
}

/** Resolve with the first line `remote` prints, or reject after `ms`. */
export function firstLine(remote: RemoteProcess, ms: number): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = "";
    const timer = setTimeout(() => reject(new Error(`no line printed within ${ms} ms`)), ms);
    remote.stdout.on("data", (chunk: Buffer) => {
      text += chunk.toString("utf8");
      const newline = text.indexOf("\n");
      if (newline !== -1) {
        clearTimeout(timer);
        resolve(text.slice(0, newline).trim());
      }
    });
  });
}

/** An output listener that calls `onLine` with each complete line (trimmed). */
export function lines(onLine: (line: string) => void): (text: string) => void {
  let pending = "";
  return (text) => {
    pending += text;
    let newline = pending.indexOf("\n");
    while (newline !== -1) {
      onLine(pending.slice(0, newline).trim());
      pending = pending.slice(newline + 1);
      newline = pending.indexOf("\n");
    }
  };
}

/** Wait until `predicate` holds, polling; false when `ms` ran out. */
export async function eventually(predicate: () => boolean, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (!predicate()) {
    if (Date.now() > deadline) return false;
    await sleep(25);
  }
  return true;
}

/**
 * The server-side process that serves the connection a remote shell runs on: the shell's nearest ancestor that is
 * the server's per-connection process — with OpenSSH's sshd, its user child (`sshd: user@notty`); with dropbear, the
 * nearest `dropbear` process (the per-connection child keeps the listener's command line, and the listener is
 * further up). A transport may wrap the command, so it is not always the shell's parent; with other servers (one
 * inside the test process), the shell's parent. Undefined when that process is this test process or one of its
 * ancestors, which must never be killed.
 */
export function serverSideProcess(shell: number, parent: number): number | undefined {
  const serverChild = ancestorsOf(shell).find((entry) => /^sshd(-session)?: [^\s[]+@/.test(entry.args) || /^(\S*\/)?dropbear(\s|$)/.test(entry.args));
  const chosen = serverChild?.pid ?? parent;
  const ours = new Set([process.pid, ...ancestorsOf(process.pid).map((entry) => entry.pid)]);
  return ours.has(chosen) ? undefined : chosen;
}

/** A process on this machine (the server is local), named so that a reused pid is never mistaken for it. */
export interface LocalProcess {
  readonly pid: number;
  readonly startTime: number | undefined;
}

export function localProcess(pid: number | undefined): LocalProcess | undefined {
  return pid ? { pid, startTime: startTimeOf(pid) } : undefined;
}

/** SIGKILL leftovers of a case (and the process group each leads), if they are still the same processes. */
export function killLeftovers(...processes: Array<LocalProcess | undefined>): void {
  for (const leftover of processes) {
    if (!leftover || leftover.startTime === undefined || !isAlive(leftover.pid, leftover.startTime)) continue;
    for (const which of [-leftover.pid, leftover.pid]) {
      try {
        process.kill(which, "SIGKILL");
      } catch {
        // gone, or not a group leader
      }
    }
  }
}

/**
 * Settles with the rejection (or `undefined` on success) and the time it took. A promise still pending after
 * `limitMs` counts as a failure with an error that says so, so that a hang fails the case with a clear message.
 */
export async function outcome(promise: Promise<unknown>, limitMs = 20_000): Promise<{ error: unknown; ms: number }> {
  const started = Date.now();
  let timer: NodeJS.Timeout | undefined;
  const limit = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`still pending after ${limitMs} ms`)), limitMs);
  });
  try {
    await Promise.race([promise, limit]);
    return { error: undefined, ms: Date.now() - started };
  } catch (error) {
    return { error, ms: Date.now() - started };
  } finally {
    clearTimeout(timer);
  }
}

/** What each group of cases gets from the suite: its runner, and connections it need not close itself. */
export interface SuiteConnections {
  /** The transport and target under test; throws when the setup failed. */
  context(): { readonly transport: Transport; readonly target: Target };
  /** A new connection, closed after the suite. */
  fresh(): Promise<Connection>;
  /** The suite's shared connection (a new one when a case left it closed). */
  usable(): Promise<Connection>;
  /** A case leaves its connection usable (or closed): it still runs a command. */
  expectStillUsable(connection: Connection): Promise<void>;
}
