/**
 * Request and result types of the Executor. Times are milliseconds; sizes are bytes.
 */
import type { Readable } from "node:stream";

/**
 * Where an operation runs. The pool keys connections by `user@host:port`.
 * @example { host: "web-1", user: "deploy", port: 22 }
 */
export interface Target {
  /** Host name or address (IPv4, IPv6, or an ssh_config alias the transport resolves). */
  readonly host: string;
  /** TCP port, 1–65535. When absent the transport decides (ssh_config, then 22). */
  readonly port?: number;
  /** Login user. When absent the transport decides (ssh_config, then the local user). */
  readonly user?: string;
}

/** Run a command as another user through sudo. `true` means root without a password (`sudo -n`). */
export interface SudoOptions {
  /** The account to run as (`sudo -u`). Default: root. */
  readonly user?: string;
  /**
   * The sudo password. Written to the remote sudo's stdin after its prompt appears, never placed on a
   * command line, in a trace, a log or an error. Without it sudo runs with `-n` and fails fast instead of waiting.
   */
  readonly password?: string;
}

export interface PtyOptions {
  readonly rows?: number;
  readonly cols?: number;
  /** `TERM` for the pseudo-terminal. Default `xterm`. */
  readonly term?: string;
}

/** Options shared by every operation. */
export interface OperationOptions extends Target {
  /** Overall time budget; the remote process is stopped when it runs out. Default: the executor config's. */
  readonly timeout?: number;
  /** Cancels the operation; the remote process is stopped. */
  readonly signal?: AbortSignal;
}

export type OutputListener = (chunk: string) => void;

/** A shell command line to run on one host: what `executor.runCommand(command)` takes. */
export interface Command extends OperationOptions {
  /**
   * The shell command line, not quoted by tunnel. It is run by POSIX `/bin/sh` on every host, whatever the login
   * user's shell is (bash, dash, zsh, mksh, busybox ash, fish, tcsh): tunnel sends the login shell one line that
   * every common shell parses the same way, and that line starts `/bin/sh`, so the login shell's environment (its
   * `PATH`) still applies. Write `cmd` in POSIX sh; for bash or zsh syntax, set `shell`.
   * @example { cmd: "for f in /etc/*.conf; do wc -l \"$f\"; done" }
   */
  readonly cmd: string;
  /**
   * The interpreter for `cmd` instead of `/bin/sh`: an absolute path or a name on the host's `PATH`, e.g. `"bash"`
   * (run as `bash -c <cmd>`, after the working dir and env are set). A host without it fails with a
   * `ValidationError` on field `shell` before `cmd` runs. Default: `/bin/sh`.
   */
  readonly shell?: string;
  /** Run through sudo. `true` = root, no password. */
  readonly sudo?: boolean | SudoOptions;
  /** Environment variables, set inline for the command (quoted; servers drop SSH `env` requests). */
  readonly env?: Readonly<Record<string, string>>;
  /** Working directory; the command fails before it runs if it does not exist. */
  readonly workingDir?: string;
  /** Data for the command's stdin, then EOF. */
  readonly stdin?: string | Uint8Array | Readable;
  /** Allocate a pseudo-terminal (stdout and stderr merge; lines end in `\r\n`). */
  readonly pty?: boolean | PtyOptions;
  /**
   * The command is safe to run twice. Only then is it retried after the connection was lost while it ran.
   * Default `false`.
   */
  readonly idempotent?: boolean;
  /** Throw `CommandFailedError` (carrying the result) on a non-zero exit instead of returning it. */
  readonly check?: boolean;
  /** Called with decoded stdout text as it arrives. */
  readonly onStdout?: OutputListener;
  /** Called with decoded stderr text as it arrives. */
  readonly onStderr?: OutputListener;
  /** Cap on collected bytes per stream; past it, `truncated` is set and the rest is dropped (callbacks still see it). */
  readonly maxOutputBytes?: number;
}

/** A script to upload to one host and run there: what `executor.runScript(script)` takes. */
export interface Script extends OperationOptions {
  /** The script body. */
  readonly content: string;
  /** Interpreter: an absolute path or a plain name found on the host's PATH. Default: the shebang, else `/bin/sh`. */
  readonly interpreter?: string;
  /** Arguments, each passed as one word. */
  readonly args?: readonly string[];
  /** Data for the script's stdin, then EOF (the body travels on a channel of its own). A stream gets one attempt. */
  readonly stdin?: string | Uint8Array | Readable;
  readonly env?: Readonly<Record<string, string>>;
  readonly workingDir?: string;
  readonly sudo?: boolean | SudoOptions;
  readonly idempotent?: boolean;
  readonly check?: boolean;
  readonly onStdout?: OutputListener;
  readonly onStderr?: OutputListener;
  readonly maxOutputBytes?: number;
}

export interface Progress {
  /** Bytes moved so far. */
  readonly bytes: number;
  /** Total bytes, when known. */
  readonly total: number | undefined;
  /** Bytes per second since the transfer started. */
  readonly rate: number;
}

export type TransferDirection = "upload" | "download";

/** A file or directory tree to copy to or from one host: what `executor.transferFile(transfer)` takes. */
export interface Transfer extends OperationOptions {
  /** Local path for uploads, remote path for downloads. */
  readonly source: string;
  /** Remote path for uploads, local path for downloads. */
  readonly destination: string;
  readonly direction: TransferDirection;
  /** File mode applied after the transfer, as an octal string like `"0755"` or a number. */
  readonly mode?: string | number;
  readonly owner?: string;
  readonly group?: string;
  /** Change the owner/group through sudo (on uploads; the remote login user usually cannot `chown`). */
  readonly sudo?: boolean | SudoOptions;
  /** Transfer a directory tree. */
  readonly recursive?: boolean;
  /** What to do when the destination exists. Default `replace`. */
  readonly overwrite?: "replace" | "skip" | "error";
  /** Verify the destination against the source. Default `false`. */
  readonly verify?: "sha256" | false;
  readonly onProgress?: (progress: Progress) => void;
}

/** What a command or script produced. A non-zero exit is data, not an exception. */
export interface Result {
  /** The exit code, or `null` when the process was killed by a signal. */
  readonly exitCode: number | null;
  /** The signal that killed the process, as `SIGTERM`-style name, or `null`. */
  readonly signal: string | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly durationMs: number;
  /** How many attempts it took (1 when the first succeeded). */
  readonly attempts: number;
  /** The connection key `user@host:port`. */
  readonly host: string;
  /** True when output past `maxOutputBytes` was dropped. */
  readonly truncated: boolean;
}

export interface TransferResult {
  readonly bytes: number;
  readonly files: number;
  readonly durationMs: number;
  readonly attempts: number;
  readonly host: string;
  /** `true` when verified, `false` when verification was not asked for. */
  readonly verified: boolean;
  /** Files left alone because of `overwrite: "skip"`. */
  readonly skipped: number;
}
