/**
 * A session a process can run its command in without a mux client of its own: the master's own session
 * (`master-session.ts`, the connection's first command) or a session worker (`session-worker.ts`, many commands).
 */
import type { ChildProcess } from "node:child_process";
import type { Readable } from "node:stream";
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
