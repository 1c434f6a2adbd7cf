/**
 * The ControlMaster's own session, which carries the connection's first command: a connection that runs one command
 * (a fan-out, `tunnel run`) then starts one ssh process, as plain `ssh host cmd` does, instead of a master and a mux
 * client.
 *
 * The master is started with a session whose perl exit waiter waits for its command on the session's stdin (core's
 * `commandFrame`), like a standby session. Two things make it a session like any other:
 * - Output end. ssh hands the session its stdout alone, so it closes its stdout when the session's channel closes: the
 *   command's stdout ends there. ssh keeps its stderr for its own messages, so the waiter passes the command's stderr
 *   on through a pipe of its own and reports how the command ended once that pipe has ended (`relayStderr`): the
 *   report is the last byte of the command's stderr.
 * - Lifetime. A master without `ControlPersist` exits once its session has closed and no mux client is connected. The
 *   connection keeps one connection to the control socket open (it never speaks; the master only sends its hello),
 *   so the master outlives its session and serves the connection's other commands; it still stops when told to, and
 *   dies with this process like every master.
 * On a host without perl the waiter exits at once, having run nothing: the first command then takes a mux client.
 */
import type { ChildProcess } from "node:child_process";
import type { Readable, Writable } from "node:stream";
import { SessionClient, type SharedSession, type TakenSession } from "./shared-session.js";
import type { WaiterReport } from "@tunnel-sh/core/internal";
import { MarkerFilter } from "./wrapper.js";

export class MasterSession implements SharedSession {
  private readonly markers: MarkerFilter;
  private waiter: "perl" | "sh" | undefined;
  /** The server's session process (`sshd`, `dropbear`), from the waiter's first report; "" when it could not tell. */
  server: string | undefined;
  private onServer: (() => void) | undefined;
  private state: "idle" | "taken" | "released" = "idle";
  private ended = false;
  private onReady: ((ready: boolean) => void) | undefined;
  private onReport: ((marker: WaiterReport) => void) | undefined;
  private client: MasterSessionClient | undefined;

  /**
   * @param master the master process, its stdio pipes the session's
   * @param nonce the nonce of the session's waiter
   * @param sshStderr receives what is not the command's: ssh's own messages, and anything outside the command
   */
  constructor(
    private readonly master: ChildProcess,
    readonly nonce: string,
    private readonly sshStderr: (chunk: Buffer) => void,
  ) {
    this.markers = new MarkerFilter(nonce, (marker) => this.report(marker));
    master.stderr!.on("data", (chunk: Buffer) => this.markers.write(chunk));
    this.markers.on("data", (chunk: Buffer) => {
      const client = this.client;
      if (client && !client.stderrEnded) client.stderr.write(chunk);
      else this.sshStderr(chunk);
    });
    master.stdin!.on("error", () => undefined);
    // ssh closes its stdout when the session's channel closes; the master itself may go on. Nothing comes before the
    // command frame, and the process that takes the session pipes stdout on before it writes that frame.
    master.stdout!.once("end", () => this.end());
    master.stdout!.resume();
    master.once("close", () => this.end());
  }

  /** Nobody has taken the session and it is still open: the next command may. */
  get available(): boolean {
    return this.state === "idle" && !this.ended;
  }

  /**
   * Take the session for a command. `ready` is called once: true when the waiter is ready for the command frame
   * (then `handOver` gives the process its streams), false when the session ended before (no perl on the host, a
   * restricted login shell, the master gone): the command did not run and needs a client of its own.
   */
  take(onReport: (marker: WaiterReport) => void, ready: (ready: boolean) => void): void {
    if (!this.available) {
      ready(false);
      return;
    }
    this.state = "taken";
    this.onReport = onReport;
    if (this.waiter === "perl") ready(true);
    else this.onReady = ready;
  }

  /** The process's side of the session, once `take` said ready. */
  handOver(): TakenSession {
    const client = new MasterSessionClient(this.master);
    this.client = client;
    if (this.ended) client.end(this.master.exitCode ?? 255);
    return { child: client as unknown as ChildProcess, markers: client.stderr };
  }

  /** Not needed (the first command cannot use it): the waiter reads the end of its stdin and exits, running nothing. */
  release(): void {
    if (this.state !== "idle") return;
    this.state = "released";
    this.master.stdin!.end();
  }

  /**
   * Resolves once the server's session process is known, or the session has said something else first, ended, or
   * taken longer than `ms`: the server is then not known (the usual limits apply).
   */
  serverKnown(ms: number): Promise<void> {
    if (this.server !== undefined || this.waiter !== undefined || this.ended) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.onServer = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }

  private report(marker: WaiterReport): void {
    if (marker.kind === "server") {
      this.server ??= marker.name;
      this.onServer?.();
      this.onServer = undefined;
      return;
    }
    if (marker.kind === "ready") {
      this.waiter = marker.waiter;
      this.onServer?.();
      this.onServer = undefined;
      const ready = this.onReady;
      this.onReady = undefined;
      if (ready) ready(marker.waiter === "perl");
      return;
    }
    this.onReport?.(marker);
    if (marker.kind === "exit" || marker.kind === "signal") this.client?.reported(marker.kind === "exit" ? marker.code : 128 + marker.number);
  }

  private end(): void {
    if (this.ended) return;
    this.ended = true;
    this.onServer?.();
    this.onServer = undefined;
    const ready = this.onReady;
    this.onReady = undefined;
    ready?.(false);
    this.client?.end(this.master.exitCode ?? 255);
  }
}

/** The master's session as a process sees a mux client: its stdout ends when the session's channel closes. */
class MasterSessionClient extends SessionClient {
  override readonly stdin: Writable;
  override readonly stdout: Readable;

  constructor(master: ChildProcess) {
    super();
    this.stdin = master.stdin!;
    this.stdout = master.stdout!;
    this.stdout.once("end", () => this.stdoutDone());
  }

  /** The session (or the master) is over. */
  end(code: number): void {
    this.sessionEnded(code);
  }

  /** What killing a mux client does to its session: the channel's end reaches the waiter, which stops the command. */
  override kill(): boolean {
    if (!this.stdin.writableEnded) this.stdin.end();
    return true;
  }
}
