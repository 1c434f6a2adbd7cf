/**
 * A session a process can run its command in without a mux client of its own: the master's own session
 * (`master-session.ts`, the connection's first command) or a session worker (`session-worker.ts`, many commands).
 */
import type { ChildProcess } from "node:child_process";
import { EventEmitter } from "node:events";
import { PassThrough, type Readable, type Writable } from "node:stream";
import type { WaiterReport } from "@tunnel-sh/core/internal";

/** What a process takes over from a shared session once its waiter is ready. */
export interface TakenSession {
  /**
   * Stands in for a mux client: stdin (the command frame and the command's frames; ending it writes the done frame),
   * stdout (the command's), `kill()` (ends the session) and `close` once the command and its output are over.
   */
  readonly child: ChildProcess;
  /** The command's stderr, its waiter reports taken out; ends after the report of how the command ended. */
  readonly markers: Readable;
}

export interface SharedSession {
  /**
   * Take the session for a command. `ready` is called once: true when the waiter is ready for the command frame
   * (then `handOver` gives the process its streams), false when the session ended before (no perl on the host, a
   * refused session, the master gone): the command did not run and needs a client of its own.
   */
  take(onReport: (marker: WaiterReport) => void, ready: (ready: boolean) => void): void;
  /** The process's side of the session, once `take` said ready. */
  handOver(): TakenSession;
}

/**
 * A shared session as a process sees a mux client of its own: `exit` and `close` once the command's stdout has ended
 * and its stderr is complete (the waiter's report, or the session gone), with the reported status as the code.
 */
export abstract class SessionClient extends EventEmitter {
  abstract readonly stdin: Writable;
  abstract readonly stdout: Readable;
  /** The command's stderr, the waiter's reports taken out. */
  readonly stderr = new PassThrough();
  /** No more of the command's stderr comes (what comes now is not the command's). */
  stderrEnded = false;
  exitCode: number | null = null;
  /** The code `close` carries: the reported status, or how the session ended. */
  protected code: number | undefined;
  private outputEnded = false;

  /** The waiter reported how the command ended (its exit code, or 128 + the signal): nothing of its stderr follows. */
  reported(code: number): void {
    this.code ??= code;
    // The report's line may be the last of a chunk whose earlier bytes are still on their way to `stderr`.
    setImmediate(() => this.endStderr());
  }

  /** What killing a mux client does: the session ends, and the waiter stops the command. */
  abstract kill(): boolean;

  /** The command's stdout is complete. */
  protected stdoutDone(): void {
    this.outputEnded = true;
    this.maybeClose();
  }

  /** The session is over: `code` unless a report came first. */
  protected sessionEnded(code: number): void {
    this.code ??= code;
    this.outputEnded = true;
    setImmediate(() => this.endStderr());
  }

  /** After `close` was emitted. */
  protected closed(): void {}

  private endStderr(): void {
    if (this.stderrEnded) return;
    this.stderrEnded = true;
    this.stderr.end();
    this.maybeClose();
  }

  private maybeClose(): void {
    if (!this.outputEnded || !this.stderrEnded || this.exitCode !== null) return;
    this.exitCode = this.code ?? 255;
    this.emit("exit", this.exitCode, null);
    this.emit("close", this.exitCode, null);
    this.closed();
  }
}
