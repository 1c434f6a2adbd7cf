/**
 * Stopping one remote process: `kill(signal)` and the TERM→KILL escalation of an aborted request.
 *
 * Framed (no pty, no local file as stdin), the signal travels in band to the waiter, on every server. Otherwise a
 * second exec through the master signals the group the wrapper leads; with one session per connection, where no
 * second exec can run, the session and its connection are closed instead.
 */
import type { ChildProcess } from "node:child_process";
import { ConnectError, type ExitStatus } from "@tunnel-sh/core";
import { escalateKill, killGroupScript } from "@tunnel-sh/core/internal";
import type { ProcessHost } from "./process-host.js";
import { signalName } from "./options.js";
import type { SessionStdin } from "./session-stdin.js";

/** The state of the process the stopper reads. */
export interface StoppableProcess {
  readonly host: ProcessHost;
  readonly stdin: SessionStdin;
  readonly started: Promise<void>;
  readonly exit: Promise<ExitStatus>;
  /** The mux client, once spawned. */
  child(): ChildProcess | undefined;
  /** The group the wrapper reported, once it started. */
  groupId(): number | undefined;
  /** `exit` has settled. */
  settled(): boolean;
}

export class ProcessStopper {
  /** The signals sent, in order (without `SIG`): a process that dies unreported died of the last one. */
  readonly sent: string[] = [];
  private stopping: Promise<void> | undefined;

  constructor(private readonly process: StoppableProcess) {}

  /** `RemoteProcess.kill`: deliver `signal` to the command's group once it has started. */
  async kill(signal = "SIGTERM"): Promise<void> {
    const name = signalName(signal);
    const process = this.process;
    if (process.settled() || !process.child()) return;
    try {
      await process.started;
    } catch {
      return;
    }
    const child = process.child();
    const group = process.groupId();
    if (process.settled() || group === undefined || !child) return;
    this.sent.push(name);
    if (process.stdin.framed) {
      // In band: the waiter signals the group. Every server, one session or many.
      process.stdin.signal(name);
      // After SIGKILL the sh waiter's group is gone with the command and cannot report; nothing is left to feed.
      if (name === "KILL") process.stdin.release();
      return;
    }
    if (process.host.singleSession) {
      // Unframed (a pty, or a local file as stdin) and nothing can run beside this session: the session is closed,
      // and with it the connection, whose one session the command would hold until it ends: the pool replaces it.
      // A pty's group is hung up; an upload's `cat` reads the end of its input.
      // The master holds copies of the client's pipes; close our ends once the client is gone.
      child.once("exit", () => {
        child.stdout?.destroy();
        child.stderr?.destroy();
      });
      process.host.reportLost(
        new ConnectError("the connection was closed to stop a command: the server allows one session per connection", {
          lost: true,
          phase: "exec",
          target: process.host.target,
        }),
      );
      child.kill("SIGTERM");
      return;
    }
    // A second exec through the master signals the whole process group the wrapper leads (killing the local
    // mux client would leave a no-pty remote command running).
    const status = await process.host.runRaw(killGroupScript(name, group));
    // After SIGKILL the wrapper cannot report; the session only ends once the client's stdin is closed.
    if (name === "KILL") process.stdin.release();
    if (status !== 0 && !process.settled()) {
      // The master refused the extra session (or is gone): closing the local client is all that is left.
      child.kill("SIGTERM");
    }
  }

  /** The request's signal aborted: TERM, KILL after the grace period, then the local client. Runs once. */
  stopForAbort(): Promise<void> {
    this.stopping ??= this.escalate();
    return this.stopping;
  }

  private async escalate(): Promise<void> {
    const process = this.process;
    const graceMs = process.host.killGraceMs;
    if (process.groupId() === undefined) {
      // Not started yet: stopping the client stops the session request.
      try {
        await Promise.race([process.started, delay(graceMs)]);
      } catch {
        return;
      }
      if (process.groupId() === undefined) {
        process.child()?.kill("SIGTERM");
        return;
      }
    }
    await escalateKill({
      send: (signal) => this.kill(signal),
      ended: process.exit,
      graceMs,
      abandon: () => process.child()?.kill("SIGKILL"),
    });
  }
}

const delay = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms).unref?.());
