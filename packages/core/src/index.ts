/**
 * `@tunnel-sh/core`: what users and adapter authors need — the executor and fleets, config presets, request and
 * result types, the error classes, the `Transport` / `Pool` / `Tracer` contracts and the helpers those contracts
 * name (`startSpan`, `runProcess`, `loginShellCommand`, `inOwnProcessGroup`, `quote`, option checks, the shared SSH
 * transport options). Pieces tunnel's own packages share beyond that are on `@tunnel-sh/core/internal`.
 */
export * from "./errors.js";
export { formatTarget } from "./target.js";
export type * from "./types.js";
export type * from "./transport.js";
export type * from "./pool.js";
export { describeOptionValue, rejectUnknownOptions } from "./options.js";
export type { UnknownOptionHints } from "./options.js";
export { RENAMED_SSH_TRANSPORT_OPTIONS, SSH_TRANSPORT_OPTIONS, parseProxyJump, resolveSshTransportOptions } from "./transport-options.js";
export type {
  HostKeyChecking,
  KeyboardInteractiveHandler,
  KeyboardInteractivePrompt,
  KeyboardInteractiveRequest,
  ResolvedSshTransportOptions,
  SshTransportOptions,
} from "./transport-options.js";
export type { Attributes, AttributeValue, Span, SpanOptions, Tracer } from "./tracer.js";
export { NoopTracer } from "./tracer.js";
export { startSpan } from "./traced-span.js";
export type { StartSpanOptions } from "./traced-span.js";
export { quote, quoteArgs } from "./quote.js";
export { runProcess } from "./run.js";
export type { RunRequest, RunResult, SudoExchange } from "./run.js";
export { MAX_COMMAND_BYTES } from "./prepare.js";
export { inOwnProcessGroup } from "./remote/process-group.js";
export { loginShellCommand } from "./login-shell.js";
export { retryAttempts } from "./retry.js";
export type { RetryStatsSnapshot, RetryStrategy } from "./retry.js";
export { classifyError, isConnectionError } from "./classify.js";
export type { Classification, ClassifyContext } from "./classify.js";
export type { CircuitState, CircuitStateChange } from "./breaker.js";
export { DefaultExecutorConfig, DevelopmentExecutorConfig, ExecutorConfig, ProductionExecutorConfig, validateExecutorConfig } from "./config.js";
export type { BreakerConfig, ExecutorConfigChanges, ExecutorConfigValues } from "./config.js";
export { MIN_SECRET_LENGTH, REDACTED, Redactor } from "./redact.js";
export type { ErrorSummary } from "./redact.js";
export { Executor } from "./executor.js";
export type { ExecutorOptions, ExecutorStats } from "./executor.js";
export { Fleet } from "./fleet.js";
export type {
  FleetAmount,
  FleetCommand,
  FleetEvent,
  FleetHost,
  FleetHostResult,
  FleetHostStatus,
  FleetOperation,
  FleetOptions,
  FleetReport,
  FleetRun,
  FleetRunner,
  FleetScript,
  FleetTransfer,
} from "./fleet-types.js";
