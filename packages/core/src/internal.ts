/**
 * `@tunnel-sh/core/internal`: what tunnel's own packages share beyond the public contract — request validators,
 * command preparation and its tokens, output collection, the retry and circuit-breaker machinery, the target's
 * identity, abort and deadline helpers, the concurrency limiter, the channel budget, the login-shell encoder's parts
 * and SSH certificate parsing. No stability promise: any name here may change in any release. Users and adapter authors import `@tunnel-sh/core`, which has everything they need.
 */
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
export type { PreparationFailure, PrepareOptions, PreparedCommand, PreparedSudo, PrepareParts } from "./prepare.js";
export { MAX_LOGIN_LINE_LENGTH, encodeForPrintf, loginShellLength } from "./login-shell.js";
export { exitWaiterScript, parseWaiterReport } from "./remote/exit-waiter.js";
export type { ExitWaiterOptions, WaiterReport } from "./remote/exit-waiter.js";
export { SESSION_WORKER_IDLE_SECONDS, WorkerOutputReader, sessionWorkerScript } from "./remote/session-worker.js";
export { SESSION_GROUP_PROBE, parseSessionGroupProbe } from "./remote/process-group.js";
export { STDIN_DONE_FRAME, STDIN_END_FRAME, StdinFramer, commandFrame, stdinSignalFrame } from "./remote/stdin-frames.js";
export type { FrameWaiter } from "./remote/stdin-frames.js";
export { killGroupScript } from "./remote/kill.js";
export { streamDownloadScript, streamUploadScript } from "./remote/file-stream.js";
export { terminalResetScript } from "./remote/terminal.js";
export type { TerminalSize } from "./remote/terminal.js";
export { OutputCollector } from "./output.js";
export { DEFAULT_MAX_OUTPUT_BYTES } from "./run.js";
export { TokenFilter } from "./token-filter.js";
export { RetryStats, computeBackoff, executeWithRetry } from "./retry.js";
export { abortErrorFrom, deadlineSignal, raceAbort, sleep } from "./abort.js";
export { DEFAULT_KILL_GRACE_MS, escalateKill } from "./kill-escalation.js";
export type { EscalationOutcome, EscalationSignal, KillEscalation } from "./kill-escalation.js";
export type { DeadlineSignal } from "./abort.js";
export { Limiter } from "./limiter.js";
export { BUDGET_RECOVERY_RELEASES, ChannelBudget, ChannelLease, MAX_CHANNEL_REFUSALS, isChannelRefusal, settleLease } from "./channel-budget.js";
export type { ChannelLeaseOptions, ChannelStepOptions } from "./channel-budget.js";
export type { RetryInfo, RetryOptions, RetryOutcome } from "./retry.js";
export { CircuitBreaker, CircuitBreakerRegistry, breakerOutcome } from "./breaker.js";
export type { BreakerOutcome, CircuitBreakerOptions, CircuitBreakerSettings, CircuitPermit } from "./breaker.js";
export { copyTarget, targetKey } from "./target.js";
export { CERTIFIED_KEY_TYPES, SshReader, parseSshCertificate, parseSshCertificateBlob, sshCertificateProblem, sshString } from "./ssh-certificate.js";
export type { SshCertificate } from "./ssh-certificate.js";
