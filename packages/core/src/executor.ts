/**
 * The Executor: tunnel's high-level interface. `runCommand`, `runScript` (and `transferFile`) on top of an injected
 * `Pool`, with validation before any I/O, timeouts and cancellation that stop the remote process, safe retries,
 * a circuit breaker per host, and a span per operation.
 *
 * @example
 * const executor = new Executor(pool, ProductionExecutorConfig(), tracer);
 * const result = await executor.runCommand({ host: "web-1", user: "deploy", cmd: "systemctl status nginx", sudo: true });
 */
import { randomBytes } from "node:crypto";
import { setMaxListeners } from "node:events";
import { CircuitBreakerRegistry } from "./breaker.js";
import type { CircuitState, CircuitStateChange } from "./breaker.js";
import { classifyError, isConnectionError } from "./classify.js";
import { DefaultExecutorConfig, ExecutorConfig } from "./config.js";
import type { ExecutorConfigChanges } from "./config.js";
import {
  AbortError,
  ChannelError,
  CommandFailedError,
  ConfigError,
  TimeoutError,
  TransferError,
  TunnelError,
  ValidationError,
  formatTarget,
} from "./errors.js";
import { describeOptionValue, rejectUnknownOptions } from "./options.js";
import type { Lease, Pool } from "./pool.js";
import { detectPreparationFailure, prepareCommand, prepareScriptCommand } from "./prepare.js";
import type { PreparedCommand } from "./prepare.js";
import { Redactor } from "./redact.js";
import { killNamingScript, killSudoGroupsScript } from "./remote/kill.js";
import { removeScriptFolderScript, writeScriptFolderScript } from "./remote/script-folder.js";
import { startSpan } from "./traced-span.js";
import { RetryStats, executeWithRetry, retryAttempts } from "./retry.js";
import type { RetryStatsSnapshot } from "./retry.js";
import { runProcess } from "./run.js";
import type { RunRequest, RunResult } from "./run.js";
import { NoopTracer } from "./tracer.js";
import type { Attributes, Span, Tracer } from "./tracer.js";
import type { Connection } from "./transport.js";
import { downloadTransfer, uploadTransfer } from "./transfer.js";
import type { TransferContext, TransferOutcome } from "./transfer.js";
import type { Command, Progress, Result, Script, SudoOptions, Target, Transfer, TransferResult } from "./types.js";
import { validateCommand, validateScript, validateTransfer } from "./validate.js";

export interface ExecutorOptions {
  /**
   * Secrets to keep out of traces and errors, shared with the tracer. The executor adds each operation's sudo
   * password to a per-operation child. Default: a new, empty redactor.
   */
  readonly redactor?: Redactor;
  /** Budget in ms for removing a script's temp folder after the script ended, failed or was cancelled. Default 10 000. */
  readonly cleanupTimeout?: number;
}

export interface ExecutorStats extends RetryStatsSnapshot {
  /** Operations running now. */
  readonly running: number;
  /** Operations waiting for a `maxConcurrent` slot. */
  readonly queued: number;
  /** Circuit breaker state per connection key. */
  readonly breakers: Readonly<Record<string, CircuitState>>;
}

/** The key the executor (breakers, spans, results) uses for a target: `user@host:port`, empty parts when unknown. */
export function targetKey(target: Target): string {
  const host = target.host.includes(":") ? `[${target.host}]` : target.host;
  return `${target.user ?? ""}@${host}:${target.port ?? ""}`;
}

/** What one attempt knows, shared with the retry classifier. */
interface AttemptContext {
  started: boolean;
  /** The command was handed to a live connection: an exec request may have reached the server. */
  requested?: boolean;
}

interface Operation {
  readonly target: Target;
  readonly key: string;
  readonly signal: AbortSignal;
  readonly span: Span;
  readonly deadline: number;
}

const EXECUTOR_OPTIONS = Object.keys({ redactor: true, cleanupTimeout: true } satisfies Record<keyof ExecutorOptions, true>);
const SCRIPT_FOLDER_PREFIX = "tunnel-script.";
/** Channel refusals one operation absorbs (moving to another channel each time) before it fails. */
const MAX_CHANNEL_REFUSALS = 20;
/** Files moved at once in a directory transfer (each takes a channel of the connection). */
const TRANSFER_PARALLELISM = 4;

export class Executor {
  readonly #pool: Pool;
  readonly #tracer: Tracer;
  readonly #redactor: Redactor;
  readonly #breakers: CircuitBreakerRegistry;
  readonly #retryStats = new RetryStats();
  readonly #slots: Slots;
  readonly #cleanupTimeout: number;
  #config: ExecutorConfig;

  constructor(pool: Pool, config: ExecutorConfig = DefaultExecutorConfig(), tracer: Tracer = new NoopTracer(), options: ExecutorOptions = {}) {
    rejectUnknownOptions(options, EXECUTOR_OPTIONS, "Executor");
    if (options.cleanupTimeout !== undefined && !(typeof options.cleanupTimeout === "number" && Number.isInteger(options.cleanupTimeout) && options.cleanupTimeout > 0)) {
      throw new ConfigError("cleanupTimeout", `must be a positive whole number of milliseconds, got ${describeOptionValue(options.cleanupTimeout)}`);
    }
    if (options.redactor !== undefined && typeof (options.redactor as { child?: unknown }).child !== "function") {
      throw new ConfigError("redactor", `must be a Redactor, got ${describeOptionValue(options.redactor)}`);
    }
    this.#pool = pool;
    this.#config = config instanceof ExecutorConfig ? config : new ExecutorConfig(config);
    this.#tracer = tracer;
    this.#redactor = options.redactor ?? new Redactor();
    this.#cleanupTimeout = options.cleanupTimeout ?? 10_000;
    this.#slots = new Slots(this.#config.maxConcurrent);
    this.#breakers = new CircuitBreakerRegistry({
      ...this.#config.breaker,
      onStateChange: (change) => this.#onBreakerChange(change),
    });
  }

  /** The configuration new operations use. */
  get config(): ExecutorConfig {
    return this.#config;
  }

  /** Apply a new configuration (or changes to the current one) to operations started from now on. */
  updateConfig(config: ExecutorConfig | ExecutorConfigChanges): void {
    const next = config instanceof ExecutorConfig ? config : this.#config.with(config);
    this.#config = next;
    this.#slots.resize(next.maxConcurrent);
    this.#breakers.configure(next.breaker);
  }

  /** Counters since the executor was made: operations, attempts, retries, failures by code, breaker states. */
  stats(): ExecutorStats {
    return {
      ...this.#retryStats.snapshot(),
      running: this.#slots.running,
      queued: this.#slots.queued,
      breakers: this.#breakers.states(),
    };
  }

  /**
   * Run a shell command on a host. A non-zero exit is data in the result; `check: true` throws
   * `CommandFailedError` instead. Rejects with a `TunnelError` (validation before any I/O, connection,
   * authentication, timeout, abort, sudo, circuit open, retries exhausted).
   */
  async runCommand(command: Command): Promise<Result> {
    validateCommand(command);
    // Preparing once up front refuses what cannot be sent (a command line past MAX_COMMAND_BYTES) before any I/O.
    prepareCommand(command);
    const config = this.#config;
    const timeout = command.timeout ?? config.defaultTimeout;
    const attributes: Attributes = {
      "tunnel.command.text": command.cmd,
      "tunnel.command.sudo": command.sudo !== undefined && command.sudo !== false,
      "tunnel.command.timeout": timeout / 1000,
      "tunnel.command.working_dir": command.workingDir,
      "tunnel.command.env_count": Object.keys(command.env ?? {}).length,
    };
    return this.#operation("tunnel.command", command, timeout, attributes, command.check === true, async (operation, context, attempt) => {
      const prepared = prepareCommand(command);
      return this.#withLease(operation, attempt, async (connection) => {
        const result = await this.#run(connection, operation, context, prepared, {
          ...(command.pty !== undefined ? { pty: command.pty } : {}),
          ...(command.stdin !== undefined ? { stdin: command.stdin } : {}),
          ...(command.onStdout ? { onStdout: command.onStdout } : {}),
          ...(command.onStderr ? { onStderr: command.onStderr } : {}),
          maxOutputBytes: command.maxOutputBytes ?? config.maxOutputBytes,
        }, command.sudo);
        failOnPreparation(prepared, result, operation.target, "shell");
        return result;
      }, context);
    }, {
      idempotent: command.idempotent === true,
      // A stream can be read once: a request with streamed stdin is attempted once.
      replayable: !(command.stdin !== undefined && typeof command.stdin === "object" && "pipe" in command.stdin),
      sudo: command.sudo,
    });
  }

  /**
   * Run a script on a host: its body goes through the exec channel into a private `mktemp -d` folder (mode 0700,
   * owned by the user it runs as), runs with the interpreter (explicit, else the shebang, else `/bin/sh`), and the
   * folder is removed afterwards — on success, failure, timeout and abort.
   */
  async runScript(script: Script): Promise<Result> {
    validateScript(script);
    prepareScriptCommand(script, `/tmp/${SCRIPT_FOLDER_PREFIX}${"0".repeat(24)}/script`);
    const config = this.#config;
    const timeout = script.timeout ?? config.scriptTimeout;
    const attributes: Attributes = {
      "tunnel.script.interpreter": script.interpreter,
      "tunnel.script.args_count": script.args?.length ?? 0,
      "tunnel.script.size": Buffer.byteLength(script.content),
      "tunnel.command.sudo": script.sudo !== undefined && script.sudo !== false,
      "tunnel.command.timeout": timeout / 1000,
      "tunnel.command.working_dir": script.workingDir,
      "tunnel.command.env_count": Object.keys(script.env ?? {}).length,
    };
    return this.#operation("tunnel.script", script, timeout, attributes, script.check === true, async (operation, context, attempt) =>
      this.#withLease(operation, attempt, async (connection) => {
        // The folder's name is chosen here, so it can be removed even when the upload itself was cut short.
        const folderName = `${SCRIPT_FOLDER_PREFIX}${randomBytes(12).toString("hex")}`;
        try {
          const folder = await this.#uploadScript(connection, operation, script, folderName);
          const prepared = prepareScriptCommand(script, `${folder}/script`);
          const result = await this.#run(connection, operation, context, prepared, {
            ...(script.onStdout ? { onStdout: script.onStdout } : {}),
            ...(script.onStderr ? { onStderr: script.onStderr } : {}),
            maxOutputBytes: script.maxOutputBytes ?? config.maxOutputBytes,
          }, script.sudo);
          failOnPreparation(prepared, result, operation.target);
          return result;
        } finally {
          await this.#removeScriptFolder(connection, operation, script, folderName);
        }
      }, context),
    {
      idempotent: script.idempotent === true,
      replayable: true,
      sudo: script.sudo,
    });
  }

  /**
   * Upload or download a file or (with `recursive`) a directory tree: atomic per file (temp name, then rename), with
   * the `overwrite` policy, `mode`/`owner`/`group`, optional sha256 verification and progress. Safe to retry, so
   * retryable failures (a lost connection included) are retried with the executor's strategy.
   */
  async transferFile(transfer: Transfer): Promise<TransferResult> {
    validateTransfer(transfer);
    const timeout = transfer.timeout ?? this.#config.transferTimeout;
    const attributes: Attributes = {
      // The local side is kept apart so tracers can leave local file paths out of traces.
      "tunnel.transfer.local_path": transfer.direction === "upload" ? transfer.source : transfer.destination,
      "tunnel.transfer.remote_path": transfer.direction === "upload" ? transfer.destination : transfer.source,
      "tunnel.transfer.direction": transfer.direction,
      "tunnel.transfer.verify": transfer.verify === "sha256" ? "sha256" : "none",
      "tunnel.transfer.recursive": transfer.recursive === true,
    };
    // Each attempt counts from zero; the caller sees progress that never goes back, across retries too.
    let highest = -1;
    const listener = transfer.onProgress;
    const onProgress = listener
      ? (progress: Progress) => {
          if (progress.bytes <= highest) return;
          highest = progress.bytes;
          listener(progress);
        }
      : undefined;
    return this.#operation<TransferResult, TransferOutcome>(
      "tunnel.transfer",
      transfer,
      timeout,
      attributes,
      false,
      (operation, context, attempt) =>
        this.#withLease(operation, attempt, (connection) => {
          context.started = true;
          const transferContext: TransferContext = {
            connection,
            target: operation.target,
            signal: operation.signal,
            parallelism: TRANSFER_PARALLELISM,
            sudoTimeout: this.#config.sudoTimeout,
            borrow: async () => {
              const lease = await this.#pool.acquire(operation.target, { signal: operation.signal, parentSpan: operation.span });
              return {
                connection: lease.connection,
                done: (error?: unknown) => (error === undefined ? lease.release() : settleLease(lease, error)),
              };
            },
            onVerifyMismatch: (path) => operation.span.addEvent("tunnel.transfer.verify_mismatch", { "tunnel.transfer.remote_path": path }),
          };
          const request: Transfer = onProgress ? { ...transfer, onProgress } : transfer;
          return transfer.direction === "upload" ? uploadTransfer(transferContext, request) : downloadTransfer(transferContext, request);
        }),
      {
        idempotent: true,
        replayable: true,
        sudo: transfer.sudo,
        complete: (outcome, attempts, durationMs, key, span) => {
          const result: TransferResult = { ...outcome, attempts, durationMs, host: key };
          span.setAttributes({
            "tunnel.transfer.bytes": result.bytes,
            "tunnel.transfer.files": result.files,
            "tunnel.transfer.skipped": result.skipped,
            "tunnel.transfer.rate": durationMs > 0 ? Math.round((result.bytes * 1000) / durationMs) : 0,
            "tunnel.transfer.verified": result.verified,
            "tunnel.attempts": attempts,
          });
          return result;
        },
      },
    );
  }

  /** The shared frame of every operation: span, deadline, cancellation, concurrency slot, breaker, retries. */
  async #operation<R = Result, V = RunResult>(
    name: string,
    request: Target & { readonly signal?: AbortSignal },
    timeout: number,
    attributes: Attributes,
    check: boolean,
    attemptOnce: (operation: Operation, context: AttemptContext, attempt: number) => Promise<V>,
    options: {
      readonly idempotent: boolean;
      readonly replayable: boolean;
      readonly sudo: boolean | SudoOptions | undefined;
      /** Turns the last attempt's value into the operation's result (default: a command `Result`). */
      readonly complete?: (value: V, attempts: number, durationMs: number, key: string, span: Span) => R;
    },
  ): Promise<R> {
    const config = this.#config;
    const target: Target = { host: request.host, ...(request.port !== undefined ? { port: request.port } : {}), ...(request.user !== undefined ? { user: request.user } : {}) };
    const key = targetKey(target);
    const password = typeof options.sudo === "object" ? options.sudo.password : undefined;
    const redactor = this.#redactor.child(password !== undefined ? [password] : []);
    const span = startSpan(this.#tracer, name, {
      attributes: {
        "server.address": target.host,
        "server.port": target.port,
        "tunnel.user": target.user,
        "tunnel.connection.key": key,
        ...attributes,
      },
      redactor,
    });
    const startedAt = performance.now();
    const stop = new AbortController();
    // Every remote process, lease wait and transfer of the operation listens on this signal; a tree transfer has many.
    setMaxListeners(0, stop.signal);
    const onAbort = () => stop.abort(new AbortError(undefined, { target }));
    request.signal?.addEventListener("abort", onAbort, { once: true });
    if (request.signal?.aborted) onAbort();
    const timer = setTimeout(() => stop.abort(new TimeoutError(`the operation timed out after ${timeout} ms`, { timeoutMs: timeout, target })), timeout);
    const operation: Operation = { target, key, signal: stop.signal, span, deadline: Date.now() + timeout };
    const context: AttemptContext = { started: false };
    let attempts = 0;
    try {
      await this.#slots.acquire(stop.signal);
      try {
        const permit = this.#breakers.acquire(key, target);
        try {
          const outcome = await executeWithRetry(
            (attempt) => {
              attempts = attempt;
              context.started = false;
              context.requested = false;
              return attemptOnce(operation, context, attempt);
            },
            {
              strategy: {
                maxAttempts: options.replayable ? config.maxRetries + 1 : 1,
                baseDelay: config.retryBackoff,
                maxDelay: config.maxRetryDelay,
                multiplier: config.retryMultiplier,
                jitter: config.retryJitter,
              },
              signal: stop.signal,
              deadline: operation.deadline,
              // Every failed connect attempt counts for the breaker; once it opened, the operation stops retrying.
              shouldRetry: (error) =>
                permit.attemptFailed(error) &&
                classifyError(error, { started: context.started, requested: context.requested === true, idempotent: options.idempotent }).retryable,
              onRetry: ({ attempt, delayMs, error }) =>
                span.addEvent("tunnel.retry", {
                  "tunnel.attempt": attempt + 1,
                  "tunnel.retry.delay": delayMs / 1000,
                  "error.type": TunnelError.is(error) ? error.code : "Error",
                }),
              stats: this.#retryStats,
              target,
            },
          );
          permit.success();
          const durationMs = performance.now() - startedAt;
          if (options.complete) return options.complete(outcome.value, outcome.attempts, durationMs, key, span);
          const run = outcome.value as unknown as RunResult;
          const result: Result = {
            exitCode: run.exitCode,
            signal: run.signal,
            stdout: run.stdout,
            stderr: run.stderr,
            durationMs,
            attempts: outcome.attempts,
            host: key,
            truncated: run.truncated,
          };
          span.setAttributes({
            "process.exit.code": result.exitCode ?? undefined,
            "tunnel.exit.signal": result.signal ?? undefined,
            "tunnel.attempts": result.attempts,
            "tunnel.output.truncated": result.truncated,
          });
          span.addEvent("tunnel.command.completed", {
            "process.exit.code": result.exitCode ?? undefined,
            "tunnel.exit.signal": result.signal ?? undefined,
          });
          if (check && result.exitCode !== 0) throw new CommandFailedError(result, { target });
          return result as unknown as R;
        } catch (error) {
          permit.settle(error);
          throw error;
        }
      } finally {
        this.#slots.release();
      }
    } catch (caught) {
      const error = stop.signal.aborted && !(caught instanceof CommandFailedError) ? finalStopError(stop.signal, caught) : caught;
      span.setAttributes({ "tunnel.attempts": retryAttempts(caught) ?? Math.max(attempts, 1) });
      span.recordError(error);
      throw redactor.redactErrorObject(error);
    } finally {
      clearTimeout(timer);
      request.signal?.removeEventListener("abort", onAbort);
      span.end();
    }
  }

  /**
   * Acquire a lease, health-check it before a retry, run `work`, and give the lease back the right way.
   * A channel the server refused before the command started is not a failed attempt: the pool lowers that
   * connection's budget and the work moves to another channel, up to `MAX_CHANNEL_REFUSALS` times.
   */
  async #withLease<T>(operation: Operation, attempt: number, work: (connection: Connection) => Promise<T>, context?: AttemptContext): Promise<T> {
    for (let refusals = 0; ; refusals++) {
      let lease = await this.#pool.acquire(operation.target, { signal: operation.signal, parentSpan: operation.span });
      if (attempt > 1 && refusals === 0) {
        try {
          await lease.connection.ping({ signal: operation.signal });
        } catch (error) {
          // The connection the retry got is not healthy: drop it and take a fresh one.
          lease.destroy(error);
          operation.span.addEvent("tunnel.connection.unhealthy", { "error.type": TunnelError.is(error) ? error.code : "Error" });
          lease = await this.#pool.acquire(operation.target, { signal: operation.signal, parentSpan: operation.span });
        }
      }
      try {
        const value = await work(lease.connection);
        if (this.#config.connectionReuse) lease.release();
        else lease.destroy();
        return value;
      } catch (error) {
        settleLease(lease, error);
        if (isRefusal(error) && context !== undefined && !context.started && refusals < MAX_CHANNEL_REFUSALS && !operation.signal.aborted) {
          operation.span.addEvent("tunnel.channel.refused", { "tunnel.channel.refusals": refusals + 1 });
          continue;
        }
        throw error;
      }
    }
  }

  /** One remote process through core's derived run, with the operation's cancellation and the sudo exchange. */
  async #run(
    connection: Connection,
    operation: Operation,
    context: AttemptContext,
    prepared: PreparedCommand,
    extra: Omit<RunRequest, "command" | "signal" | "timeoutMs" | "sudo" | "onStarted">,
    sudo?: boolean | SudoOptions,
  ): Promise<RunResult> {
    // Set once the sudo-wrapped command was let through its gate (see prepare.ts): only then can anything of it run.
    let released = false;
    const request: RunRequest = {
      ...extra,
      command: prepared.command,
      start: prepared.start,
      signal: operation.signal,
      onStarted: () => {
        context.started = true;
      },
      ...(prepared.sudo
        ? {
            sudo: {
              ...prepared.sudo,
              promptTimeoutMs: this.#config.sudoTimeout,
              onPrompt: () => operation.span.addEvent("tunnel.sudo.prompt_answered"),
              onRelease: () => {
                released = true;
                operation.span.addEvent("tunnel.sudo.released");
              },
            },
          }
        : {}),
    };
    // A connection already closed sends nothing; on a live one the exec request may reach the server from now on.
    if (!connection.closed) context.requested = true;
    if (!prepared.sudo || sudo === undefined || sudo === false) return runProcess(connection, request);
    // A process run under sudo belongs to another user: the signal the login user's channel sends reaches sudo but
    // not the command's children. On cancel after the gate opened, first stop the command's process groups as that
    // user, then the channel. Before the gate opened nothing of the request runs: closing the channel is enough (sudo
    // runs as the login user's real uid and dies with the session; the gated shell reads EOF), and no second sudo
    // round trip is made.
    const inner = new AbortController();
    const onAbort = () => {
      if (!released) {
        inner.abort(operation.signal.reason);
        return;
      }
      void this.#killSudoGroups(connection, operation, prepared.nonce, sudo).finally(() => inner.abort(operation.signal.reason));
    };
    operation.signal.addEventListener("abort", onAbort, { once: true });
    if (operation.signal.aborted) onAbort();
    try {
      const result = await runProcess(connection, { ...request, signal: inner.signal });
      // The group kill may end the command before the channel is stopped: it still ended because of the stop.
      if (operation.signal.aborted) throw operation.signal.reason;
      return result;
    } finally {
      operation.signal.removeEventListener("abort", onAbort);
    }
  }

  /**
   * Signals the process groups of the sudo command with this nonce: the group of its `sudo` process (found by the ready
   * token in its command line; the bracket keeps the killer from matching itself) and those of sudo's children (sudo's
   * `use_pty` puts the command in a session of its own). TERM, then KILL for what is left.
   */
  async #killSudoGroups(connection: Connection, operation: Operation, nonce: string, sudo: boolean | SudoOptions): Promise<void> {
    const kill = prepareCommand({ cmd: killSudoGroupsScript(nonce), sudo });
    try {
      await this.#housekeeping(connection, kill);
    } catch (error) {
      operation.span.addEvent("tunnel.cancel.kill_failed", { "error.type": TunnelError.is(error) ? error.code : "Error" });
    }
  }

  /**
   * Runs a prepared command that tidies up after an operation (a kill, a removal): on its own time budget and
   * without the operation's signal, which may already be aborted.
   */
  #housekeeping(connection: Connection, prepared: PreparedCommand): Promise<RunResult> {
    return runProcess(connection, {
      command: prepared.command,
      start: prepared.start,
      timeoutMs: this.#cleanupTimeout,
      ...(prepared.sudo ? { sudo: { ...prepared.sudo, promptTimeoutMs: this.#config.sudoTimeout } } : {}),
    });
  }

  /**
   * Writes the script body into a new private folder (mode 0700, `$TMPDIR` or `/tmp`), as the user the script runs as;
   * returns the folder. `mkdir` of a fresh random name fails rather than follow anything already there.
   */
  async #uploadScript(connection: Connection, operation: Operation, script: Script, folderName: string): Promise<string> {
    const upload = prepareCommand({
      cmd: writeScriptFolderScript(folderName),
      ...(script.env !== undefined ? { env: script.env } : {}),
      ...(script.sudo !== undefined ? { sudo: script.sudo } : {}),
    });
    const result = await this.#run(connection, operation, { started: false }, upload, { stdin: script.content }, script.sudo);
    const folder = result.stdout.trim();
    if (result.exitCode !== 0 || !folder.startsWith("/") || folder.includes("\n")) {
      throw new TransferError(`could not write the script into a temp folder on ${formatTarget(operation.target)}: ${result.stderr.trim()}`, {
        target: operation.target,
      });
    }
    return folder;
  }

  /**
   * Best effort, bounded, and independent of the operation's (possibly aborted) signal. When the operation's
   * connection is gone (or the removal itself was cut), the folder is removed over another connection from the pool,
   * so a lost connection does not leave a script behind as long as the host can be reached again.
   */
  async #removeScriptFolder(connection: Connection, operation: Operation, script: Script, folderName: string): Promise<void> {
    const remove = prepareCommand({
      cmd: removeScriptFolderScript(folderName),
      ...(script.env !== undefined ? { env: script.env } : {}),
      ...(script.sudo !== undefined ? { sudo: script.sudo } : {}),
    });
    // Over another connection, the operation's own session may have left a process on the host (its link was cut, not
    // its shell): first stop whatever names the folder (the bracket keeps the pattern from matching the shell that
    // runs it; the name itself is kept out of that command line), then remove it, and once more a moment later for a
    // process that was about to create it.
    const stopLeftovers = prepareCommand({
      cmd: killNamingScript("script", folderName.slice(SCRIPT_FOLDER_PREFIX.length)),
      ...(script.sudo !== undefined ? { sudo: script.sudo } : {}),
    });
    const removeOn = async (target: Connection, afterLoss = false): Promise<boolean> => {
      if (afterLoss) await this.#housekeeping(target, stopLeftovers);
      if ((await this.#housekeeping(target, remove)).exitCode !== 0) return false;
      if (!afterLoss) return true;
      await new Promise((resolve) => setTimeout(resolve, 500));
      return (await this.#housekeeping(target, remove)).exitCode === 0;
    };
    let lastError: unknown;
    // Two tries on the operation's own connection, then over others from the pool until the budget is spent: the host
    // may be flapping, and each failed try waits a little longer.
    const deadline = Date.now() + this.#cleanupTimeout;
    for (let tries = 1; tries <= 2 || Date.now() < deadline; tries++) {
      if (tries > 2) await new Promise((resolve) => setTimeout(resolve, Math.min(1_000, 100 * (tries - 2))));
      try {
        if (!connection.closed && tries <= 2) {
          if (await removeOn(connection)) return;
          continue;
        }
        const lease = await this.#pool.acquire(operation.target, { signal: AbortSignal.timeout(Math.max(1, deadline - Date.now())) });
        try {
          const removed = await removeOn(lease.connection, true);
          lease.release();
          if (removed) return;
        } catch (error) {
          settleLease(lease, error);
          throw error;
        }
      } catch (error) {
        lastError = error;
        // A refused channel frees up as the operation's own channels close.
        if (isRefusal(error)) await new Promise((resolve) => setTimeout(resolve, 50 * tries));
      }
    }
    operation.span.addEvent("tunnel.script.cleanup_failed", { "error.type": TunnelError.is(lastError) ? lastError.code : "Error" });
  }

  #onBreakerChange(change: CircuitStateChange): void {
    // Breaker changes are not tied to one operation; record them on a short span of their own.
    const span = startSpan(this.#tracer, "tunnel.breaker", { attributes: { "tunnel.connection.key": change.key }, redactor: this.#redactor });
    span.addEvent("tunnel.breaker.state", {
      "tunnel.breaker.state": change.to,
      "tunnel.breaker.previous_state": change.from,
      "tunnel.breaker.failures": change.failures,
      "tunnel.connection.key": change.key,
    });
    span.end();
  }
}

/** The server refused to open a channel (its MaxSessions): a budget problem, not a failure of the host. */
function isRefusal(error: unknown): boolean {
  return ChannelError.is(error) && error.refused;
}

/** Return a lease after a failed attempt: evict on connection errors, lower the budget on a channel refusal. */
function settleLease(lease: Lease, error: unknown): void {
  if (isConnectionError(error)) lease.destroy(error);
  else if (isRefusal(error) && lease.refused) lease.refused();
  else lease.release();
}

/** The prepared command stopped before the user's command ran: a missing working dir or interpreter. */
function failOnPreparation(prepared: PreparedCommand, result: RunResult, target: Target, interpreterField = "interpreter"): void {
  const failure = detectPreparationFailure(prepared, result);
  if (failure === "working-dir") throw new ValidationError("workingDir", "does not exist on the host or cannot be entered", { target, phase: "exec" });
  if (failure === "interpreter") throw new ValidationError(interpreterField, "was not found on the host", { target, phase: "exec" });
}

/** After the operation's own stop fired, the caller sees why: the timeout or the abort, not a side effect of it. */
function finalStopError(signal: AbortSignal, caught: unknown): unknown {
  const reason: unknown = signal.reason;
  if (TunnelError.is(reason)) {
    if (TunnelError.is(caught) && (caught.code === reason.code || caught.code === "SUDO")) return caught;
    return reason;
  }
  return caught;
}

/** A FIFO counting semaphore for `maxConcurrent`, abortable while waiting. */
class Slots {
  #limit: number;
  running = 0;
  readonly #waiters: Array<{ resolve: () => void; reject: (error: unknown) => void; signal: AbortSignal; onAbort: () => void }> = [];

  constructor(limit: number) {
    this.#limit = limit;
  }

  get queued(): number {
    return this.#waiters.length;
  }

  resize(limit: number): void {
    this.#limit = limit;
    this.#drain();
  }

  acquire(signal: AbortSignal): Promise<void> {
    if (signal.aborted) return Promise.reject(signal.reason as unknown);
    if (this.running < this.#limit && this.#waiters.length === 0) {
      this.running += 1;
      return Promise.resolve();
    }
    return new Promise<void>((resolve, reject) => {
      const waiter = {
        resolve,
        reject,
        signal,
        onAbort: () => {
          const index = this.#waiters.indexOf(waiter);
          if (index !== -1) this.#waiters.splice(index, 1);
          reject(signal.reason as unknown);
        },
      };
      signal.addEventListener("abort", waiter.onAbort, { once: true });
      this.#waiters.push(waiter);
    });
  }

  release(): void {
    this.running -= 1;
    this.#drain();
  }

  #drain(): void {
    while (this.running < this.#limit && this.#waiters.length > 0) {
      const waiter = this.#waiters.shift();
      if (!waiter) break;
      waiter.signal.removeEventListener("abort", waiter.onAbort);
      this.running += 1;
      waiter.resolve();
    }
  }
}

