/** The parsed options of `tunnel run`, `script`, `put` and `get` (commander's camel-cased names). */
import type { FleetAmount } from "@tunnel-sh/core";
import type { TransportName } from "./stack.js";

/** Options every command takes. */
export interface CommonOptions {
  readonly hosts?: string[];
  readonly inventory?: string;
  readonly group?: string[];
  readonly user?: string;
  readonly port?: number;
  readonly sshConfig?: string;
  readonly identity?: string;
  readonly knownHosts?: string;
  readonly insecureAcceptAnyHostKey?: boolean;
  readonly forwardAgent?: boolean;
  readonly transport: TransportName;
  readonly concurrency: number;
  readonly retries?: number;
  readonly timeout?: number;
  readonly json?: boolean;
  readonly verbose: number;
  /** Rolling batch sizes (`--serial 1,10%,100%`). */
  readonly serial?: readonly FleetAmount[];
  /** The failure budget (`--max-fail 3` or `10%`). */
  readonly maxFail?: FleetAmount;
}

/** Options of commands that may run through the queue instead of this machine. */
export interface QueueCliOptions {
  /** Submit through the queue on this Redis (`redis://host:6379`) instead of running here. */
  readonly redis?: string;
  readonly queue?: string;
  /** The secret name workers resolve into the sudo password. */
  readonly sudoSecret?: string;
  /** Job ids derived from it: submitting the same run again runs nothing twice. */
  readonly runId?: string;
}

export interface SudoCliOptions {
  readonly sudo?: boolean;
  readonly sudoUser?: string;
  readonly askSudoPass?: boolean;
  readonly sudoPassEnv?: string;
}

export interface ExecOptions extends CommonOptions, SudoCliOptions, QueueCliOptions {
  readonly env?: string[];
  readonly cwd?: string;
  readonly interpreter?: string;
  /** Send this machine's stdin to the command or script on every host. */
  readonly stdin?: boolean;
}

export interface TransferOptions extends CommonOptions, SudoCliOptions, QueueCliOptions {
  readonly verify?: boolean;
  readonly recursive?: boolean;
  readonly overwrite?: "replace" | "skip" | "error";
  readonly mode?: string;
  readonly chown?: string;
}
