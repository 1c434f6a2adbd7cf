/**
 * What one remote process needs from its connection, and the local files a transfer hands the mux client.
 */
import type { Target, TunnelError } from "@tunnel-sh/core";

/** What a process needs from its connection. */
export interface ProcessHost {
  readonly target: Target;
  readonly sshPath: string;
  readonly env: Readonly<Record<string, string | undefined>>;
  /** After an abort sent SIGTERM, how long to wait before SIGKILL (and after SIGKILL before giving up). */
  readonly killGraceMs: number;
  /** Wait through perl on the host when it has one (exact status), or always through the login shell. */
  readonly exactExitStatus: boolean;
  /** The longest login-shell line the server takes in one exec request (dropbear's 9 000 bytes), when it is short. */
  readonly maxLoginLineBytes?: number | undefined;
  /** ssh arguments of a client of the master, up to (not including) `-T`/`-tt` and the host. Built once. */
  readonly clientArgs: readonly string[];
  /** Is the master still there? Waits briefly for it to notice a dropped link. */
  masterLost(): Promise<TunnelError | undefined>;
  /** The mux client could not reach the master: mark the connection lost. */
  reportLost(error: TunnelError): void;
  /** Run `command` through the master without the wrapper; resolves with ssh's exit status. */
  runRaw(command: string): Promise<number | null>;
  /**
   * The server allows one session per connection (`maxChannels: 1`, sshd's `MaxSessions 1`): no second exec can
   * carry a kill, so stopping a process closes its session instead.
   */
  readonly singleSession: boolean;
  /** The server refused this process's session (its `MaxSessions` is below the connection's channels). */
  refused(): void;
  /** Bookkeeping of live processes: `connectionClosed()` is called on each when the connection closes. */
  track(process: TrackedProcess): void;
  untrack(process: TrackedProcess): void;
}

/** A live process as its connection sees it. */
export interface TrackedProcess {
  /** The connection closed under this process: stop its mux client. */
  connectionClosed(): void;
}

/**
 * Local files handed to the mux client as its stdin or stdout (transfers): the master reads or writes them directly,
 * so the bytes never pass through this process. The matching stream of the `RemoteProcess` is then empty.
 */
export interface ProcessFiles {
  readonly stdin?: number;
  readonly stdout?: number;
}
