/**
 * The Executor: tunnel's high-level interface. `runCommand`, `runScript` (and `transferFile`) on top of an injected
 * `Pool`, with validation before any I/O, timeouts and cancellation that stop the remote process, safe retries,
 * a circuit breaker per host, and a span per operation.
 *
 * @example
 * const executor = new Executor(pool, ProductionExecutorConfig(), tracer);
 * const result = await executor.runCommand({ host: "web-1", user: "deploy", cmd: "systemctl status nginx", sudo: true });
 */
import { CircuitBreakerRegistry } from "./breaker.js";
import type { CircuitState, CircuitStateChange } from "./breaker.js";
import { DefaultExecutorConfig, ExecutorConfig } from "./config.js";
import type { ExecutorConfigChanges } from "./config.js";
import { ConfigError, ValidationError } from "./errors.js";
import { Limiter } from "./limiter.js";
import { commandResult, runOperation } from "./operation.js";
import type { OperationServices } from "./operation.js";
import { OperationDeadlines } from "./operation-deadlines.js";
import { runOperationProcess } from "./operation-process.js";
import type { ProcessSettings } from "./operation-process.js";
import { describeOptionValue, rejectUnknownOptions } from "./options.js";
import type { Pool } from "./pool.js";
import { detectPreparationFailure, prepareCommand, prepareScriptCommand } from "./prepare.js";
import type { PreparedCommand } from "./prepare.js";
import { Redactor } from "./redact.js";
import { RetryStats } from "./retry.js";
import type { RetryStatsSnapshot } from "./retry.js";
import { isStreamInput } from "./run.js";
import type { RunRequest, RunResult } from "./run.js";
import { LONGEST_SCRIPT_PATH, removeScriptFolder, scriptFolderName, uploadScript } from "./script-folder.js";
import { startSpan } from "./traced-span.js";
import { NoopTracer } from "./tracer.js";
import type { Attributes, Tracer } from "./tracer.js";
import { downloadTransfer, uploadTransfer } from "./transfer.js";
import type { TransferContext, TransferOutcome } from "./transfer.js";
import type { Command, Progress, Result, Script, Target, Transfer, TransferResult } from "./types.js";
import { validateCommand, validateScript, validateTransfer } from "./validate.js";
import { leaseChannel, withLease } from "./with-lease.js";

export interface ExecutorOptions {
  /**
   * Secrets to keep out of traces and errors, shared with the tracer. The executor adds each operation's sudo
   * password to a per-operation child. Default: a new, empty redactor.
   */
  readonly redactor?: Redactor;
  /**
   * Budget in ms for removing a script's temp folder after the script ended, failed or was cancelled, and a failed
   * transfer's temp files. Default 10 000.
   */
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

const EXECUTOR_OPTIONS = Object.keys({ redactor: true, cleanupTimeout: true } satisfies Record<keyof ExecutorOptions, true>);
/** Files moved at once in a directory transfer (each takes a channel of the connection). */
const TRANSFER_PARALLELISM = 4;

export class Executor {
  readonly #pool: Pool;
  readonly #tracer: Tracer;
  readonly #redactor: Redactor;
  readonly #breakers: CircuitBreakerRegistry;
  readonly #retryStats = new RetryStats();
  readonly #deadlines = new OperationDeadlines();
  readonly #limiter: Limiter;
  readonly #cleanupTimeout: number;
  #config: ExecutorConfig;
  #servicesOnce: OperationServices | undefined;
  #settings: ProcessSettings | undefined;
  /** Read when an attempt ends: whether its lease is released for reuse or destroyed. */
  readonly #reuse = (): boolean => this.#config.connectionReuse;

  constructor(pool: Pool, config: ExecutorConfig = DefaultExecutorConfig(), tracer: Tracer = new NoopTracer(), options: ExecutorOptions = {}) {
    rejectUnknownOptions(options, EXECUTOR_OPTIONS, "Executor");
    if (
      options.cleanupTimeout !== undefined &&
      !(typeof options.cleanupTimeout === "number" && Number.isInteger(options.cleanupTimeout) && options.cleanupTimeout > 0)
    ) {
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
    this.#limiter = new Limiter(this.#config.maxConcurrent);
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
    this.#limiter.resize(next.maxConcurrent);
    this.#breakers.configure(next.breaker);
  }

  /** Counters since the executor was made: operations, attempts, retries, failures by code, breaker states. */
  stats(): ExecutorStats {
    return {
      ...this.#retryStats.snapshot(),
      running: this.#limiter.running,
      queued: this.#limiter.queued,
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
    // Preparing up front refuses what cannot be sent (a command line past MAX_COMMAND_BYTES) before any I/O; the
    // first attempt sends it, a retry prepares again (a nonce of its own).
    const first = prepareCommand(command);
    const config = this.#config;
    const timeout = command.timeout ?? config.defaultTimeout;
    return runOperation(this.#services, config, {
      name: "tunnel.command",
      request: command,
      timeout,
      attributes: () => ({ "tunnel.command.text": command.cmd, ...executionAttributes(command, timeout) }),
      idempotent: command.idempotent === true,
      // A stream can be read once: a request with streamed stdin is attempted once.
      replayable: !isStreamInput(command.stdin),
      sudo: command.sudo,
      attempt: async (operation, context, attempt) => {
        const prepared = attempt === 1 ? first : prepareCommand(command);
        return withLease(
          this.#pool,
          operation,
          attempt,
          this.#reuse,
          async (connection) => {
            const result = await runOperationProcess(
              connection,
              operation,
              context,
              prepared,
              processOptions(command, config.maxOutputBytes, command),
              this.#processSettings,
              command.sudo,
            );
            failOnPreparation(prepared, result, operation.target, "shell");
            return result;
          },
          context,
        );
      },
      complete: commandResult(command.check === true),
    });
  }

  /**
   * Run a script on a host: its body goes through the exec channel into a private `mktemp -d` folder (mode 0700,
   * owned by the user it runs as), runs with the interpreter (explicit, else the shebang, else `/bin/sh`), and the
   * folder is removed afterwards — on success, failure, timeout and abort.
   */
  async runScript(script: Script): Promise<Result> {
    validateScript(script);
    prepareScriptCommand(script, LONGEST_SCRIPT_PATH);
    const config = this.#config;
    const timeout = script.timeout ?? config.scriptTimeout;
    return runOperation(this.#services, config, {
      name: "tunnel.script",
      request: script,
      timeout,
      attributes: () => ({
        "tunnel.script.interpreter": script.interpreter,
        "tunnel.script.args_count": script.args?.length ?? 0,
        "tunnel.script.size": Buffer.byteLength(script.content),
        ...executionAttributes(script, timeout),
      }),
      idempotent: script.idempotent === true,
      replayable: !isStreamInput(script.stdin),
      sudo: script.sudo,
      attempt: (operation, context, attempt) =>
        withLease(
          this.#pool,
          operation,
          attempt,
          this.#reuse,
          async (connection, channel) => {
            // The folder's name is chosen here, so it can be removed even when the upload itself was cut short.
            const folderName = scriptFolderName();
            try {
              const folder = await uploadScript(connection, operation, script, folderName, this.#processSettings);
              const prepared = prepareScriptCommand(script, `${folder}/script`);
              const result = await runOperationProcess(
                connection,
                operation,
                context,
                prepared,
                processOptions(script, config.maxOutputBytes),
                this.#processSettings,
                script.sudo,
              );
              failOnPreparation(prepared, result, operation.target);
              return result;
            } finally {
              await removeScriptFolder(this.#pool, channel, operation, script, folderName, this.#processSettings);
            }
          },
          context,
        ),
      complete: commandResult(script.check === true),
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
    return runOperation<TransferResult, TransferOutcome>(this.#services, this.#config, {
      name: "tunnel.transfer",
      request: transfer,
      timeout,
      attributes: () => attributes,
      manyListeners: true,
      idempotent: true,
      replayable: true,
      sudo: transfer.sudo,
      attempt: (operation, context, attempt) =>
        withLease(this.#pool, operation, attempt, this.#reuse, (_connection, channel) => {
          context.started = true;
          const transferContext: TransferContext = {
            channel,
            target: operation.target,
            signal: operation.signal,
            parallelism: TRANSFER_PARALLELISM,
            sudoTimeout: this.#config.sudoTimeout,
            cleanupTimeout: this.#cleanupTimeout,
            borrow: async (stop, budget) => {
              const borrowed = await leaseChannel(this.#pool, operation, { ...(stop ? { stop } : {}), ...(budget ? { budget } : {}) });
              return { channel: borrowed, done: (error?: unknown) => borrowed.finish(error) };
            },
            onVerifyMismatch: (path) => operation.span.addEvent("tunnel.transfer.verify_mismatch", { "tunnel.transfer.remote_path": path }),
          };
          const request: Transfer = onProgress ? { ...transfer, onProgress } : transfer;
          return transfer.direction === "upload" ? uploadTransfer(transferContext, request) : downloadTransfer(transferContext, request);
        }),
      complete: (outcome, attempts, durationMs, { key, span }) => {
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
    });
  }

  /** What the operation frame takes from this executor. */
  get #services(): OperationServices {
    return (this.#servicesOnce ??= {
      tracer: this.#tracer,
      redactor: this.#redactor,
      limiter: this.#limiter,
      breakers: this.#breakers,
      retryStats: this.#retryStats,
      deadlines: this.#deadlines,
    });
  }

  /** Read when a process starts, so an `updateConfig` reaches the processes started after it. */
  get #processSettings(): ProcessSettings {
    const sudoTimeout = this.#config.sudoTimeout;
    if (this.#settings?.sudoTimeout !== sudoTimeout) this.#settings = { sudoTimeout, cleanupTimeout: this.#cleanupTimeout };
    return this.#settings;
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

/**
 * What a command or a script passes on to its process: its stdin, listeners and output cap, and a command's pty
 * (`command`). Assigned field by field: object spreads are a measurable part of a command's cost.
 */
function processOptions(
  request: Command | Script,
  maxOutputBytes: number,
  command?: Command,
): Omit<RunRequest, "command" | "signal" | "timeoutMs" | "sudo" | "onStarted"> {
  const options: { -readonly [K in keyof RunRequest]?: RunRequest[K] } = { maxOutputBytes: request.maxOutputBytes ?? maxOutputBytes };
  if (command?.pty !== undefined) options.pty = command.pty;
  if (request.stdin !== undefined) options.stdin = request.stdin;
  if (request.onStdout) options.onStdout = request.onStdout;
  if (request.onStderr) options.onStderr = request.onStderr;
  return options;
}

/** The span attributes a command and a script share. */
function executionAttributes(request: Command | Script, timeout: number): Attributes {
  return {
    "tunnel.command.sudo": request.sudo !== undefined && request.sudo !== false,
    "tunnel.command.timeout": timeout / 1000,
    "tunnel.command.working_dir": request.workingDir,
    "tunnel.command.env_count": Object.keys(request.env ?? {}).length,
  };
}

/** The prepared command stopped before the user's command ran: a missing working dir or interpreter. */
function failOnPreparation(prepared: PreparedCommand, result: RunResult, target: Target, interpreterField = "interpreter"): void {
  const failure = detectPreparationFailure(prepared, result);
  if (failure === "working-dir") throw new ValidationError("workingDir", "does not exist on the host or cannot be entered", { target, phase: "exec" });
  if (failure === "interpreter") throw new ValidationError(interpreterField, "was not found on the host", { target, phase: "exec" });
}
