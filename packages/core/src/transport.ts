/**
 * The contract between core and a transport (`@tunnel-sh/transport-ssh2`, `@tunnel-sh/transport-openssh`, ...).
 *
 * A transport implements a few small primitives — open a connection, spawn a remote process, move one
 * file's bytes, ping, close. Core derives everything else (buffered results, sudo prompts, scripts,
 * directory transfers, atomic renames, checksums, retries) on top of them, once, for every transport.
 *
 * Transports MUST NOT retry, queue or pool on their own: that is the executor's and the pool's job.
 * Transports MUST turn every vendor error into a `TunnelError` (see `errors.ts`); nothing raw escapes.
 *
 * Each cross-cutting policy lives in one layer, with one module in core (its helpers are on `@tunnel-sh/core/internal`,
 * `formatTarget` on the main entry):
 * - Target (`target.ts`, `validateTarget` in `validate.ts`): a transport MUST check a target with core's
 *   `validateTarget` before any I/O and MUST NOT add rules of its own; keys and messages use `targetKey` /
 *   `formatTarget`.
 * - Abort and deadline (`abort.ts`): every `signal` MUST be honoured at once — checked on entry, listened to while
 *   waiting — and an aborted call MUST leave nothing open or running. Deadlines are the executor's: a transport
 *   MUST NOT impose an operation time limit of its own (its connect and handshake timeouts are its options).
 * - Concurrency (`limiter.ts`): how many operations run at once is the executor's `maxConcurrent`; a transport
 *   MUST NOT limit or queue spawns beyond `maxChannels`.
 * - Channel budget (`channel-budget.ts`): the pool decides how many channels a connection holds. A transport MUST
 *   report a channel the server refused as a `ChannelError` with `refused: true` and MUST NOT retry it, for an exec
 *   as for `upload`/`download`. It MAY hold an open until channels it closed itself are confirmed gone on the
 *   server, so that its own count of `maxChannels` stays true.
 * - Health (the pool): a transport MUST keep `closed` and `onClose` current and answer `ping()` with a real round
 *   trip; deciding when to ping, and what a failed ping means, is the pool's.
 * - Kill escalation (`RemoteProcess.kill`, `SpawnRequest.signal`): the transport's, within its options.
 */
import type { Readable, Writable } from "node:stream";
import type { TunnelError } from "./errors.js";
import type { Span } from "./tracer.js";
import type { Progress, PtyOptions, Target } from "./types.js";

/**
 * Makes connections: the factory a pool calls to open a connection to a target.
 * @example const connection = await new Ssh2Transport({ knownHostsFile }).connect({ host: "web-1", user: "deploy" });
 */
export interface Transport {
  /** Short name for traces and stats, e.g. `"ssh2"` or `"openssh"`. */
  readonly name: string;
  /**
   * Open and authenticate one connection.
   * MUST reject with a `TunnelError`: `ValidationError` from core's `validateTarget` before any I/O,
   * `ConnectError` (retryable) for refused/DNS/timeout/handshake failures, `AuthenticationError`, `HostKeyError`,
   * `AbortError` when `signal` aborts (and then leave nothing open).
   */
  connect(target: Target, options?: ConnectOptions): Promise<Connection>;
  /**
   * Options that change which server or identity a connection reaches (a jump host, an identity file),
   * rendered as a short stable string. The pool adds a digest of it to its key so connections with different
   * identities are never shared; a pool MUST NOT put the string itself into stats, traces or metrics, since it
   * may name local files. Optional; absent means "nothing beyond the target".
   */
  identity?(target: Target): string;
}

export interface ConnectOptions {
  readonly signal?: AbortSignal;
  /**
   * The span of the connect (`tunnel.connect`, opened by the pool with core's `startSpan`). A transport MAY add
   * events and attributes to it (they are redacted before any tracer sees them) and MUST NOT end it: the pool
   * does. A transport that opens spans of its own MUST open them with core's `startSpan` and this span as
   * `parent`, never by calling a tracer directly.
   */
  readonly span?: Span;
}

/** Optional abilities of a connection. Core checks these instead of `instanceof`. */
export interface ConnectionCapabilities {
  /** Pseudo-terminals can be requested (`SpawnRequest.pty`). */
  readonly pty: boolean;
  /** `RemoteProcess.kill()` delivers a signal to the remote process group. */
  readonly signals: boolean;
  /** `upload()`/`download()` are implemented. */
  readonly transfer: boolean;
}

/**
 * One authenticated connection to one host.
 * A connection is used by one pool; many processes may run on it at once, up to `maxChannels`.
 */
export interface Connection {
  /** The transport's name (`"ssh2"`, `"openssh"`). */
  readonly transport: string;
  /** The target as resolved by the transport (user and port filled in when known). */
  readonly target: Target;
  readonly capabilities: ConnectionCapabilities;
  /**
   * How many channels (sessions) may be open at once. The pool never leases more, and lowers its own budget
   * below it when the server refuses a channel (`channel-budget.ts`).
   * SHOULD default to 10, sshd's default MaxSessions.
   */
  readonly maxChannels: number;
  /**
   * The longest command line, in bytes as sent (the login-shell line), this server takes in one exec request, when
   * the transport knows it to be short (dropbear: 9 000). Core sizes the commands it batches (a tree transfer's
   * folders, hashes, renames) to fit. Undefined: the usual limits (an exec request, Linux's 128 KiB argument).
   */
  readonly maxCommandBytes?: number;
  /** True once the connection is closed or lost; a closed connection is never used again. */
  readonly closed: boolean;
  /**
   * Start a remote process running `request.command` (already prepared by core: quoted, env inlined,
   * sudo-wrapped). The one exec primitive.
   * MUST NOT throw: every failure is reported through `started`/`exit`.
   * @example const process = connection.spawn({ command: "uname -a" }); process.stdin.end(); await process.exit;
   */
  spawn(request: SpawnRequest): RemoteProcess;
  /**
   * Copy one local file to `remotePath`, creating or truncating it, streaming with flat memory.
   * Core handles temp names, renames, modes, verification and directories.
   * MUST reject with `TransferError` (or a connection error when the connection is lost).
   */
  upload(request: UploadRequest): Promise<void>;
  /** Copy one remote file to `localPath`, streaming with flat memory. Same error rules as `upload`. */
  download(request: DownloadRequest): Promise<void>;
  /**
   * A cheap liveness check (a keepalive round trip or equivalent). Rejects with a connection error if dead.
   * MUST reach the server each time (no cached answer). Called by the pool only (see `Pool`): the executor never pings.
   */
  ping(options?: { readonly signal?: AbortSignal }): Promise<void>;
  /**
   * Close the connection and everything on it (sockets, child processes, temp folders).
   * Idempotent; never rejects. Running processes' `exit` rejects with a `ConnectError` (`CONNECTION_LOST`).
   */
  close(): Promise<void>;
  /**
   * Called once when the connection closes, for any reason; `error` is set when it was lost rather than closed.
   * Returns a function that removes the listener.
   */
  onClose(listener: (error?: TunnelError) => void): () => void;
}

export interface SpawnRequest {
  /** The full command line for the remote shell. */
  readonly command: string;
  /** Allocate a pseudo-terminal. Only when `capabilities.pty`. */
  readonly pty?: boolean | PtyOptions;
  /** Aborting stops the remote process (like `kill()`) and `exit` rejects with `AbortError`. */
  readonly signal?: AbortSignal;
}

/** How a remote process ended. Exactly one of the two is non-null. */
export interface ExitStatus {
  /** Exit code 0–255, or null when killed by a signal. A remote `exit 255` is just 255. */
  readonly exitCode: number | null;
  /** Signal name with the `SIG` prefix (`"SIGTERM"`), or null. */
  readonly signal: string | null;
}

/** A running remote process with live streams. */
export interface RemoteProcess {
  /** The process's stdin. Core writes script bodies and sudo passwords here; `end()` sends EOF. */
  readonly stdin: Writable;
  /** Raw stdout bytes. MUST be read (or resumed) by the caller; core always does. */
  readonly stdout: Readable;
  /** Raw stderr bytes (empty with a pty, where stderr merges into stdout). */
  readonly stderr: Readable;
  /**
   * Resolves once the remote command has started (channel open, exec accepted).
   * Rejects with `ChannelError` / `ConnectError` when it never started — such failures are safe to retry.
   */
  readonly started: Promise<void>;
  /**
   * Resolves with the exit status once the process ended and its output streams finished.
   * Rejects with a `TunnelError` on transport failure (`CONNECTION_LOST` when the connection dropped while it ran),
   * or `AbortError` when `SpawnRequest.signal` aborted. Settles exactly once.
   */
  readonly exit: Promise<ExitStatus>;
  /**
   * Stop the remote process group (default `SIGTERM`). Idempotent; resolves once the request was delivered.
   * Needs `capabilities.signals`; transports without it stop the process by other means (closing the channel).
   */
  kill(signal?: string): Promise<void>;
}

export interface UploadRequest {
  readonly localPath: string;
  readonly remotePath: string;
  /** Mode for a newly created file, e.g. `0o600`. */
  readonly mode?: number;
  readonly signal?: AbortSignal;
  readonly onProgress?: (progress: Progress) => void;
  /**
   * Receives the file's bytes as the transport reads them to send, in file order, each byte once: core hashes a
   * verified upload with it instead of reading the local file a second time, so the hash is of the bytes sent. The
   * chunk is valid only during the call (a transport may reuse its buffer). A transport SHOULD hand over every byte
   * (the conformance suite checks it); one that does not see the bytes it sends (another process reads the file)
   * hands over the same bytes read right behind that reader. Where it cannot, it MAY leave it uncalled, or stop
   * calling it part way: core counts what it was given and, when that is not the whole file, hashes the local file
   * instead.
   */
  readonly onData?: (chunk: Uint8Array) => void;
}

export interface DownloadRequest {
  readonly remotePath: string;
  readonly localPath: string;
  readonly signal?: AbortSignal;
  readonly onProgress?: (progress: Progress) => void;
  /**
   * Receives the file's bytes while they move, in file order, each byte once: core hashes a verified download
   * with it instead of reading the finished file a second time. The chunk is valid only during the call (a
   * transport may reuse its buffer). A transport that does not see the bytes in order (they go straight to the
   * file) MAY leave it uncalled, or stop calling it part way; core counts what it was given and, when that is not
   * the whole file, hashes the finished file instead.
   */
  readonly onData?: (chunk: Uint8Array) => void;
}
