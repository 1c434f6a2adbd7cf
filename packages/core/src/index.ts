export * from "./errors.js";
export type * from "./types.js";
export type * from "./transport.js";
export type * from "./pool.js";
export { describeOptionValue, rejectUnknownOptions } from "./options.js";
export type { UnknownOptionHints } from "./options.js";
export {
  RENAMED_SSH_TRANSPORT_OPTIONS,
  SSH_TRANSPORT_OPTIONS,
  parseProxyJump,
  resolveSshTransportOptions,
} from "./transport-options.js";
export type {
  HostKeyChecking,
  KeyboardInteractiveHandler,
  KeyboardInteractivePrompt,
  KeyboardInteractiveRequest,
  ResolvedSshTransportOptions,
  SshTransportOptions,
} from "./transport-options.js";
export type { Attributes, AttributeValue, Span, Tracer } from "./tracer.js";
export { NoopTracer } from "./tracer.js";
export { quote, quoteArgs } from "./quote.js";
export { OutputCollector } from "./output.js";
export { DEFAULT_MAX_OUTPUT_BYTES, runProcess, TokenFilter } from "./run.js";
export type { RunRequest, RunResult, SudoExchange } from "./run.js";
export {
  MAX_TIMEOUT_MS,
  parseMode,
  validateAccountName,
  validateCommand,
  validateEnv,
  validateInterpreter,
  validatePath,
  validateScript,
  validateSudo,
  validateTarget,
  validateTimeout,
  validateTransfer,
} from "./validate.js";
export {
  PREPARATION_EXIT_CODE,
  MAX_COMMAND_BYTES,
  SUDO_GATE_EXIT_CODE,
  createNonce,
  detectPreparationFailure,
  preparationMarker,
  prepareCommand,
  prepareScriptCommand,
  scriptInterpreter,
  startToken,
  sudoGateLine,
  sudoPrompt,
  sudoReadyToken,
} from "./prepare.js";
export { inOwnProcessGroup } from "./remote/process-group.js";
export { exitWaiterScript, parseWaiterReport } from "./remote/exit-waiter.js";
export type { ExitWaiterOptions, WaiterReport } from "./remote/exit-waiter.js";
export { STDIN_DONE_FRAME, STDIN_END_FRAME, StdinFramer, stdinSignalFrame } from "./remote/stdin-frames.js";
export type { FrameWaiter } from "./remote/stdin-frames.js";
export { killGroupScript } from "./remote/kill.js";
export { terminalResetScript } from "./remote/terminal.js";
export type { TerminalSize } from "./remote/terminal.js";
export { MAX_LOGIN_LINE_LENGTH, encodeForPrintf, loginShellCommand, loginShellLength } from "./login-shell.js";
export type { PreparationFailure, PrepareOptions, PreparedCommand, PreparedSudo, PrepareParts } from "./prepare.js";
export { RetryStats, abortErrorFrom, computeBackoff, executeWithRetry, retryAttempts, sleep } from "./retry.js";
export type { RetryInfo, RetryOptions, RetryOutcome, RetryStatsSnapshot, RetryStrategy } from "./retry.js";
export { classifyError, isConnectionError } from "./classify.js";
export type { Classification, ClassifyContext } from "./classify.js";
export { CircuitBreaker, CircuitBreakerRegistry, breakerOutcome } from "./breaker.js";
export type {
  BreakerOutcome,
  CircuitBreakerOptions,
  CircuitBreakerSettings,
  CircuitPermit,
  CircuitState,
  CircuitStateChange,
} from "./breaker.js";
export {
  DefaultExecutorConfig,
  DevelopmentExecutorConfig,
  ExecutorConfig,
  ProductionExecutorConfig,
  validateExecutorConfig,
} from "./config.js";
export type { BreakerConfig, ExecutorConfigChanges, ExecutorConfigValues } from "./config.js";
export { MIN_SECRET_LENGTH, REDACTED, Redactor, redactSpan, spanRedactor, unwrapSpan } from "./redact.js";
export type { ErrorSummary } from "./redact.js";
export { Executor, targetKey } from "./executor.js";
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
export { CERTIFIED_KEY_TYPES, SshReader, parseSshCertificate, parseSshCertificateBlob, sshCertificateProblem, sshString } from "./ssh-certificate.js";
export type { SshCertificate } from "./ssh-certificate.js";
