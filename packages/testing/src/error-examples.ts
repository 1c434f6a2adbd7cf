/**
 * One example of every code of core's error vocabulary, each carrying the details its class adds (a field, a
 * fingerprint, a reason, a result, nested attempts): for tests that go through the whole vocabulary —
 * classification, `is()`, serialization — without writing the list of classes out again.
 *
 * @example
 * for (const [code, error] of Object.entries(errorExamples({ target }))) expect(error.code).toBe(code);
 */
// In the order of the vocabulary (`ErrorCode`), as the table below.
import {
  ValidationError,
  ConfigError,
  ConnectError,
  AuthenticationError,
  HostKeyError,
  ChannelError,
  TimeoutError,
  AbortError,
  TransferError,
  SudoError,
  CircuitOpenError,
  CommandFailedError,
  RetriesExhaustedError,
  PoolClosedError,
  PoolTimeoutError,
  UnsupportedHostError,
  OutcomeUnknownError,
  type ErrorCode,
  type Result,
  type Target,
  type TunnelError,
} from "@tunnel-sh/core";

/** The failed command's result in the `COMMAND_FAILED` example. */
const FAILED_RESULT: Result = {
  exitCode: 3,
  signal: null,
  stdout: "",
  stderr: "no\n",
  durationMs: 5,
  attempts: 1,
  host: "deploy@web-1:22",
  truncated: false,
};

/** New errors, one a code, every one of them with `target` when it is given. */
export function errorExamples(options: { readonly target?: Target } = {}): Record<ErrorCode, TunnelError> {
  const on = options.target ? { target: options.target } : {};
  return {
    VALIDATION: new ValidationError("env.BAD-NAME", "is not a valid name", on),
    CONFIG: new ConfigError("maxRetries", "must be an integer", on),
    CONNECT: new ConnectError("connect ECONNREFUSED", on),
    CONNECTION_LOST: new ConnectError("connection lost", { ...on, lost: true }),
    AUTHENTICATION: new AuthenticationError("All configured authentication methods failed", on),
    HOST_KEY: new HostKeyError("host key changed", { ...on, fingerprint: "SHA256:abc" }),
    CHANNEL: new ChannelError("(SSH) Channel open failure: open failed", { ...on, refused: true }),
    TIMEOUT: new TimeoutError("timed out after 5 ms", { ...on, timeoutMs: 5 }),
    ABORTED: new AbortError(undefined, on),
    TRANSFER: new TransferError("No such file", on),
    SUDO: new SudoError("sudo rejected the password", { ...on, reason: "wrong-password" }),
    CIRCUIT_OPEN: new CircuitOpenError("open", { ...on, retryAfterMs: 1_000 }),
    COMMAND_FAILED: new CommandFailedError(FAILED_RESULT, on),
    // The last attempt's error gives the phase: a timeout, so `exec`.
    RETRIES_EXHAUSTED: new RetriesExhaustedError(
      [new ConnectError("connect ECONNREFUSED", on), new TimeoutError("timed out after 5 ms", { ...on, timeoutMs: 5 })],
      on,
    ),
    POOL_CLOSED: new PoolClosedError(undefined, on),
    POOL_TIMEOUT: new PoolTimeoutError("no lease within 5000 ms", on),
    UNSUPPORTED_HOST: new UnsupportedHostError("the login shell did not run the command", {
      ...on,
      reason: "shell",
      detail: "This account is currently not available.",
    }),
    OUTCOME_UNKNOWN: new OutcomeUnknownError("the worker stopped while the command ran", on),
  };
}
