import {
  AbortError,
  AuthenticationError,
  ChannelError,
  ConfigError,
  ConnectError,
  HostKeyError,
  TransferError,
  TunnelError,
  UnsupportedHostError,
  formatTarget,
  type Target,
} from "@tunnel-sh/core";

/** Where the failure happened, so the same vendor error can be judged in context. */
export interface ErrorContext {
  readonly target?: Target | undefined;
  /**
   * `connect`: while connecting/authenticating; `channel`: opening a channel on a live connection;
   * `exec`: while a remote process ran; `transfer`: during an SFTP transfer.
   */
  readonly phase: "connect" | "channel" | "exec" | "transfer";
  /** Strings that must never appear in a message (passwords, passphrases). */
  readonly secrets?: readonly (string | undefined)[] | undefined;
}

interface VendorError {
  readonly message: string;
  readonly level?: string;
  readonly code?: string | number;
  readonly reason?: number | string;
}

function asVendorError(error: unknown): VendorError {
  if (error instanceof Error) return error as Error & VendorError;
  if (typeof error === "object" && error !== null && typeof (error as VendorError).message === "string") {
    return error as VendorError;
  }
  return { message: String(error) };
}

function redact(message: string, secrets: ErrorContext["secrets"]): string {
  let text = message;
  for (const secret of secrets ?? []) {
    if (secret && secret.length > 0) text = text.split(secret).join("[redacted]");
  }
  return text;
}

const CONNECT_ERRNO = new Set(["ECONNREFUSED", "ENOTFOUND", "EAI_AGAIN", "EHOSTUNREACH", "ENETUNREACH", "ETIMEDOUT", "EADDRNOTAVAIL"]);
const LOST_ERRNO = new Set(["ECONNRESET", "EPIPE", "ECONNABORTED"]);

/** SSH_OPEN_CONNECT_FAILED (sshd's MaxSessions answer) and SSH_OPEN_RESOURCE_SHORTAGE. */
const REFUSED_REASONS = new Set([2, 4]);

/** SSH_DISCONNECT_NO_MORE_AUTH_METHODS_AVAILABLE and SSH_DISCONNECT_ILLEGAL_USER_NAME. */
const AUTH_DISCONNECT_CODES = new Set([14, 15]);

/** SSH_DISCONNECT_HOST_KEY_NOT_VERIFIABLE. */
const HOST_KEY_DISCONNECT_CODE = 9;

/** Node's errno codes for local file problems during a transfer. */
const FILE_ERRNO = new Set(["ENOENT", "EACCES", "EISDIR", "ENOTDIR", "EEXIST", "ENOSPC", "EROFS", "EPERM", "EMFILE"]);

/**
 * Turn any failure seen by the ssh2 transport into a tunnel error. Idempotent: a `TunnelError` comes back unchanged.
 *
 * | ssh2 failure | tunnel error |
 * |---|---|
 * | level `client-authentication`, "All configured authentication methods failed" | `AuthenticationError` |
 * | "Host denied (verification failed)", level `handshake` | `HostKeyError` |
 * | level `client-socket` ECONNREFUSED/ENOTFOUND/EHOSTUNREACH/ETIMEDOUT | `ConnectError` CONNECT, retryable |
 * | level `client-dns` | `ConnectError` CONNECT, retryable |
 * | "Timed out while waiting for handshake" (`client-timeout`) | `ConnectError` CONNECT, retryable |
 * | "Connection lost before handshake" (`protocol`) | `ConnectError` CONNECT, retryable |
 * | "Keepalive timeout" (`client-timeout`) | `ConnectError` CONNECTION_LOST, retryable |
 * | ECONNRESET / EPIPE after the connection was up | `ConnectError` CONNECTION_LOST, retryable |
 * | "Not connected", "No response from server" | `ConnectError` CONNECTION_LOST, retryable |
 * | "(SSH) Channel open failure", reason 2 or 4 | `ChannelError` refused, retryable |
 * | "Unable to request a pseudo-terminal" (`PermitTTY no`) | `UnsupportedHostError` reason `pty`, never retried |
 * | "Unable to start subsystem: sftp" (no `Subsystem sftp`) | `UnsupportedHostError` reason `sftp`, never retried |
 * | other handshake failures (no common algorithm) | `ConnectError` CONNECT, not retryable |
 * | SFTP status errors, local file errors | `TransferError` |
 */
export function normalizeError(error: unknown, context: ErrorContext): TunnelError {
  if (TunnelError.is(error)) return error;
  const vendor = asVendorError(error);
  const target = context.target;
  const where = target ? ` (${formatTarget(target)})` : "";
  const message = redact(vendor.message, context.secrets);
  const base = { target, cause: error };
  const code = typeof vendor.code === "string" ? vendor.code : undefined;
  // ssh2 puts the SSH_MSG_DISCONNECT reason in a numeric `code`; SFTP status errors use numeric codes too.
  const disconnectCode = typeof vendor.code === "number" && context.phase !== "transfer" ? vendor.code : undefined;

  if ((error instanceof Error && error.name === "AbortError") || code === "ABORT_ERR") {
    return new AbortError(`the operation was aborted${where}`, { ...base, phase: context.phase === "channel" ? "exec" : context.phase });
  }

  if (vendor.level === "client-authentication" || /authentication methods failed/i.test(message)) {
    return new AuthenticationError(`authentication failed${where}: ${message}`, base);
  }
  if (disconnectCode !== undefined && AUTH_DISCONNECT_CODES.has(disconnectCode)) {
    return new AuthenticationError(`authentication failed${where}: ${message}`, base);
  }
  if (/^Host denied/i.test(message) || disconnectCode === HOST_KEY_DISCONNECT_CODE) {
    return new HostKeyError(`host key verification failed${where}: ${message}`, base);
  }
  if (/^Cannot parse privateKey|Encrypted private .*key detected|private key .*(passphrase|decrypt)/i.test(message)) {
    return new ConfigError("privateKey", redact(message, context.secrets), base);
  }

  if (message.startsWith("(SSH) Channel open failure")) {
    const reason = typeof vendor.reason === "number" ? vendor.reason : Number.NaN;
    const refused = REFUSED_REASONS.has(reason) || /open failed|resource shortage/i.test(message);
    if (context.phase === "connect") {
      // A jump host could not reach the next hop.
      return new ConnectError(`could not open a forwarded connection${where}: ${message}`, base);
    }
    return new ChannelError(`the server refused a channel${where}: ${message}`, { ...base, refused, retryable: refused });
  }

  if (/Unable to request a pseudo-terminal/i.test(message)) {
    return new UnsupportedHostError(`the server refused a pseudo-terminal${where}: ${message}`, { ...base, reason: "pty", detail: message });
  }
  if (/Unable to start subsystem: sftp/i.test(message)) {
    return new UnsupportedHostError(`the server has no SFTP subsystem${where}: ${message}`, { ...base, reason: "sftp", detail: message, phase: "transfer" });
  }

  if (message === "Keepalive timeout") {
    return new ConnectError(`the connection stopped answering keepalives${where}`, { ...base, lost: true, phase: lostPhase(context) });
  }
  if (message === "Not connected" || message === "No response from server") {
    return new ConnectError(`the connection is closed${where}`, { ...base, lost: true, phase: lostPhase(context) });
  }
  if (/Timed out while waiting for handshake/i.test(message)) {
    return new ConnectError(`timed out connecting${where}`, base);
  }
  if (/Connection lost before handshake/i.test(message)) {
    return new ConnectError(`the server closed the connection before the handshake${where}`, base);
  }
  if (vendor.level === "client-dns") {
    return new ConnectError(`could not resolve the host${where}: ${message}`, base);
  }
  if (code && LOST_ERRNO.has(code)) {
    if (context.phase === "connect") return new ConnectError(`connection reset${where}: ${message}`, base);
    return new ConnectError(`the connection was lost${where}: ${message}`, { ...base, lost: true, phase: lostPhase(context) });
  }
  if (code && CONNECT_ERRNO.has(code)) {
    return new ConnectError(`could not connect${where}: ${message}`, base);
  }
  if (vendor.level === "handshake") {
    // No common algorithm, bad signature: repeating will not help.
    return new ConnectError(`the SSH handshake failed${where}: ${message}`, { ...base, retryable: false });
  }
  if (vendor.level === "protocol" || vendor.level === "client-socket" || disconnectCode !== undefined) {
    if (context.phase === "connect") return new ConnectError(`the connection failed${where}: ${message}`, base);
    return new ConnectError(`the connection was lost${where}: ${message}`, { ...base, lost: true, phase: lostPhase(context) });
  }

  if (context.phase === "transfer") {
    const detail = code && FILE_ERRNO.has(code) ? `${code}: ${message}` : message;
    return new TransferError(`the transfer failed${where}: ${detail}`, base);
  }
  if (context.phase === "connect") {
    return new ConnectError(`could not connect${where}: ${message}`, { ...base, retryable: false });
  }
  if (context.phase === "channel") {
    return new ChannelError(`could not start the command${where}: ${message}`, { ...base, retryable: false });
  }
  return new ConnectError(`the connection failed${where}: ${message}`, { ...base, lost: true, retryable: false, phase: "exec" });
}

function lostPhase(context: ErrorContext): "connect" | "channel" | "exec" | "transfer" {
  return context.phase;
}
