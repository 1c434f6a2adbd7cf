/**
 * The fleet's contract: one operation (a command, a script or a transfer) on many targets, with a concurrency limit,
 * rolling batches, a failure budget, live per-host events, one cancelling `AbortSignal`, and one report.
 *
 * A fleet runs its hosts through a `FleetRunner`: the `Executor` is one (every host through the local pool), and
 * `@tunnel-sh/queue`'s producer is another (every host through workers on other machines).
 *
 * @example
 * const fleet = new Fleet(executor);
 * const report = await fleet.run({
 *   hosts: [{ host: "web-1" }, { host: "web-2" }, { host: "web-3" }],
 *   operation: { type: "command", cmd: "systemctl reload nginx", sudo: true },
 *   concurrency: 50,
 *   serial: [1, "10%", "100%"],
 *   maxFailures: "10%",
 * });
 */
import type { TunnelError } from "./errors.js";
import type { Command, Progress, Result, Script, Target, Transfer, TransferResult } from "./types.js";

/**
 * What runs one host's operation. The `Executor` implements it; so can anything that runs operations elsewhere
 * (a queue producer). Each method MUST honour the request's `signal` (stopping the remote process), call its output
 * and progress callbacks as data arrives, and reject with a `TunnelError` on failure.
 */
export interface FleetRunner {
  runCommand(command: Command): Promise<Result>;
  runScript(script: Script): Promise<Result>;
  transferFile(transfer: Transfer): Promise<TransferResult>;
  /**
   * Optional: checks a host's request beyond core's validation (which the fleet runs anyway), for what only this
   * runner refuses — e.g. a queue producer refusing a sudo password. Called for every host before any I/O; MUST throw
   * a `ValidationError` for a request it would refuse, and MUST NOT do I/O.
   */
  validate?(type: FleetOperation["type"], request: Command | Script | Transfer): void;
}

/** One host of a fleet: a target and the name events and the report use for it. */
export interface FleetHost extends Target {
  /** Unique within the fleet. Default: the target's key, `user@host:port`. */
  readonly name?: string;
}

/** Fields a fleet sets per host itself: the target, the cancelling signal and the live callbacks. */
type PerHost = keyof Target | "signal" | "onStdout" | "onStderr" | "onProgress";

/** A command for every host (as `executor.runCommand` takes it, without target, signal and callbacks). */
export type FleetCommand = { readonly type: "command" } & Omit<Command, PerHost>;
/** A script for every host (as `executor.runScript` takes it, without target, signal and callbacks). */
export type FleetScript = { readonly type: "script" } & Omit<Script, PerHost>;
/** A transfer for every host (as `executor.transferFile` takes it, without target, signal and callbacks). */
export type FleetTransfer = { readonly type: "transfer" } & Omit<Transfer, PerHost>;

export type FleetOperation = FleetCommand | FleetScript | FleetTransfer;

/** A count (`3`) or a share of the fleet's hosts (`"10%"`). */
export type FleetAmount = number | `${number}%`;

export interface FleetOptions {
  /** The targets. Names (given or derived) MUST be unique. An empty list gives an empty report. */
  readonly hosts: readonly FleetHost[];
  /**
   * The operation, the same for every host, or a function giving each host its own (e.g. a per-host env or
   * download path). The function is called for every host, and every result validated, before any I/O.
   */
  readonly operation: FleetOperation | ((host: FleetHost, index: number) => FleetOperation);
  /** Hosts running at once. An integer ≥ 1. Default 10. */
  readonly concurrency?: number;
  /**
   * Rolling batches, like Ansible's `serial`: the size of each batch, as a count or a share of all hosts (rounded up,
   * at least 1). The last size repeats until every host has had its turn. A batch starts when the one before it has
   * finished. Default: one batch of every host.
   * @example [1, "10%", "100%"]  // a canary, then 10% of the fleet, then the rest
   */
  readonly serial?: FleetAmount | readonly FleetAmount[];
  /**
   * The failure budget: how many hosts may fail (a count, or a share of all hosts, rounded down) before the fleet
   * stops. When one more fails, the budget is spent: hosts not yet started are not started (reported `skipped`), and
   * running ones finish or are cancelled, as `onBudgetSpent` says. Default: no budget, every host runs.
   */
  readonly maxFailures?: FleetAmount;
  /** Stop at the first failure: the same as `maxFailures: 0`. Default `false`. */
  readonly failFast?: boolean;
  /** What happens to running hosts once the budget is spent: `"finish"` (default) or `"cancel"` (their remote processes are stopped). */
  readonly onBudgetSpent?: "finish" | "cancel";
  /**
   * Does this finished host count as failed? Default: an error, or a command or script that exited non-zero.
   * Called with the host's result before the `done` event.
   */
  readonly isFailure?: (result: FleetHostResult) => boolean;
  /** Cancels the whole fleet: running hosts' remote processes are stopped, hosts not started are skipped. */
  readonly signal?: AbortSignal;
  /** Called with every event as it happens (the same events the run's async iterator yields). MUST NOT throw. */
  readonly onEvent?: (event: FleetEvent) => void;
}

/** How one host ended. */
export type FleetHostStatus =
  /** The operation ran and did not count as a failure. */
  | "ok"
  /** The operation failed (an error, a non-zero exit, or what `isFailure` said). */
  | "failed"
  /** The operation was started and then cancelled (the fleet's signal, or a spent budget with `onBudgetSpent: "cancel"`). */
  | "cancelled"
  /** The operation never started (the budget was spent, or the fleet was cancelled, before its turn). */
  | "skipped";

export interface FleetHostResult {
  /** The host's name (unique in the fleet). */
  readonly name: string;
  readonly target: Target;
  /** Position in `hosts`. */
  readonly index: number;
  /** Which rolling batch it belonged to, from 0. */
  readonly batch: number;
  readonly status: FleetHostStatus;
  /** A command's or script's result, when it ran to an exit. */
  readonly result?: Result;
  /** A transfer's result, when it completed. */
  readonly transfer?: TransferResult;
  /**
   * The typed error it failed or was cancelled with (a `CircuitOpenError` when the host's breaker was open). A runner
   * that rejects with something other than a `TunnelError` gets it wrapped in an `OutcomeUnknownError` (as `cause`).
   */
  readonly error?: TunnelError;
  /** Why a `skipped` host did not start. */
  readonly skipReason?: "budget" | "aborted";
  /** From start to end; 0 for skipped hosts. */
  readonly durationMs: number;
}

export interface FleetReport {
  /** One entry per host, in the order of `hosts`. */
  readonly hosts: readonly FleetHostResult[];
  readonly ok: number;
  readonly failed: number;
  readonly cancelled: number;
  readonly skipped: number;
  /** The failure budget was spent (fail-fast included). */
  readonly budgetSpent: boolean;
  /** The fleet's signal aborted it. */
  readonly aborted: boolean;
  /** Batch sizes as planned from `serial`. */
  readonly batches: readonly number[];
  readonly durationMs: number;
}

/** Live events of a fleet run, in the order they happened. */
export type FleetEvent =
  /** A rolling batch starts. */
  | { readonly type: "batch"; readonly batch: number; readonly hosts: readonly string[] }
  /** A host's operation starts. */
  | { readonly type: "started"; readonly host: string; readonly index: number; readonly batch: number }
  /** Output from a host's command or script, decoded text as it arrives. */
  | { readonly type: "output"; readonly host: string; readonly stream: "stdout" | "stderr"; readonly text: string }
  /** Progress of a host's transfer. */
  | { readonly type: "progress"; readonly host: string; readonly progress: Progress }
  /** A host finished (any status but `skipped`). */
  | { readonly type: "done"; readonly host: string; readonly result: FleetHostResult }
  /** A host will not start. */
  | { readonly type: "skipped"; readonly host: string; readonly result: FleetHostResult }
  /** The failure budget was just spent. */
  | { readonly type: "budget-spent"; readonly failures: number; readonly budget: number };

/**
 * A fleet in progress: await it (or `report`) for the report, and iterate it for the live events. An iterator started
 * in the same tick as `run()` sees every event; one started later sees the events from then on. Each iterator keeps
 * the events its reader has not taken yet: read it as the run goes, or leave the loop (`break`) to stop collecting.
 * The report never rejects for a host's failure (that is data in it); it rejects only when the run itself breaks.
 */
export interface FleetRun extends PromiseLike<FleetReport>, AsyncIterable<FleetEvent> {
  readonly report: Promise<FleetReport>;
}
