/**
 * A session opened ahead of its command: a mux client whose exit waiter has started on the host (login shell,
 * `/bin/sh`, perl) and waits for its command on the session's stdin (core's `commandFrame`).
 *
 * Starting `ssh` here and the waiter on the host is most of an exec's time; a connection that runs one command after
 * another keeps one such session ready, so the next command only has to be written to it. It is the same session,
 * waiter and framing as a mux client spawned for the command, so everything else about the process is unchanged.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { loginShellCommand } from "@tunnel-sh/core";
import { exitWaiterScript, type WaiterReport } from "@tunnel-sh/core/internal";
import type { ProcessHost } from "./process-host.js";
import { MarkerFilter, newNonce } from "./wrapper.js";

/** What a process takes over from a ready standby session. */
export interface TakenStandby {
  readonly child: ChildProcess;
  readonly nonce: string;
  /** The client's stderr, already piped through the filter of its nonce. */
  readonly markers: MarkerFilter;
  /** The waiter that reported ready (the frames it reads, the command's first), or undefined while on its way. */
  readonly waiter: "perl" | "sh" | undefined;
}

export class StandbySession {
  private readonly child: ChildProcess;
  private readonly nonce = newNonce();
  private readonly markers: MarkerFilter;
  private waiter: "perl" | "sh" | undefined;
  private onMarker: ((marker: WaiterReport) => void) | undefined;
  private gone = false;
  private taken = false;
  private stopped = false;
  /** Settles once the client process has exited, its pipes have closed and Node has released their handles. */
  private readonly exited: Promise<void>;

  /**
   * @param host the connection's side of every process
   * @param onGone called when the client exits before it was taken: `unready` when it never reported ready and was
   *   not stopped (the host cannot run a waiter ahead of its command, e.g. a `nologin` shell)
   */
  constructor(host: ProcessHost, onGone: (unready: boolean) => void) {
    const command = loginShellCommand(exitWaiterScript("", this.nonce, { exact: host.exactExitStatus, framed: true, commandFromStdin: true }));
    const args = [...host.clientArgs, "-T", "--", host.target.host, command];
    // Detached like every client: the application, not the terminal's Ctrl-C, decides when it stops.
    this.child = spawn(host.sshPath, args, { stdio: ["pipe", "pipe", "pipe"], env: host.env, detached: true });
    this.markers = new MarkerFilter(this.nonce, (marker) => {
      if (this.onMarker) this.onMarker(marker);
      else if (marker.kind === "ready") this.waiter = marker.waiter;
    });
    this.child.stderr!.pipe(this.markers);
    this.child.stdin!.on("error", () => undefined);
    this.child.on("error", () => {
      this.gone = true;
    });
    // `close` comes as the client's last pipe closes, while Node still holds the process's and pipes' handles until
    // the loop's close callbacks have run: settle after those, so a closed connection leaves no handle behind.
    this.exited = new Promise((resolve) => this.child.once("close", () => setImmediate(() => setImmediate(resolve))));
    this.child.on("close", () => {
      this.gone = true;
      if (!this.taken) onGone(this.waiter === undefined && !this.stopped);
    });
  }

  /** The client is still running and nobody has taken it: it is ready, or on its way. */
  get available(): boolean {
    return !this.gone && !this.taken && !this.stopped && this.child.exitCode === null;
  }

  /** The waiter reported ready and the session is `available`. */
  get ready(): boolean {
    return this.available && this.waiter !== undefined;
  }

  /**
   * Hand the session to a process: from now on `onMarker` gets the waiter's reports, its `ready` report too when it
   * is still on its way (`waiter` is then undefined). Only when `available`.
   */
  take(onMarker: (marker: WaiterReport) => void): TakenStandby {
    if (!this.available) throw new Error("the standby session is not available");
    this.taken = true;
    this.onMarker = onMarker;
    return { child: this.child, nonce: this.nonce, markers: this.markers, waiter: this.waiter };
  }

  /**
   * Not needed any more (the connection closes): the waiter reads the end of its stdin and exits, running nothing.
   * Settles once the client is gone, so nothing of it outlives the connection's `close()`; a taken session belongs to
   * its process, which the connection stops on its own.
   */
  stop(): Promise<void> {
    if (this.taken) return Promise.resolve();
    if (!this.stopped) {
      this.stopped = true;
      this.child.kill("SIGTERM");
    }
    return this.exited;
  }
}
