import { describe, expect, it } from "vitest";
import type { ErrorCode, ErrorPhase } from "@tunnel-sh/core";
import { normalizeError, type ErrorContext } from "../src/normalize-error.js";

function vendorError(message: string, extra: Record<string, unknown> = {}): Error {
  return Object.assign(new Error(message), extra);
}

interface Row {
  readonly fault: string;
  readonly error: unknown;
  readonly phase: ErrorContext["phase"];
  readonly name: string;
  readonly code: ErrorCode;
  readonly retryable: boolean;
  readonly errorPhase: ErrorPhase;
  readonly refused?: boolean;
}

// One row per line of the fault table in shared/notes/ssh-test-environment.md §5 (ssh2 column).
const rows: Row[] = [
  {
    fault: "auth failure (wrong key, unknown user, wrong password)",
    error: vendorError("All configured authentication methods failed", { level: "client-authentication" }),
    phase: "connect",
    name: "AuthenticationError",
    code: "AUTHENTICATION",
    retryable: false,
    errorPhase: "auth",
  },
  {
    fault: "connection refused",
    error: vendorError("connect ECONNREFUSED 127.0.0.1:2219", { level: "client-socket", code: "ECONNREFUSED", errno: -111, syscall: "connect" }),
    phase: "connect",
    name: "ConnectError",
    code: "CONNECT",
    retryable: true,
    errorPhase: "connect",
  },
  {
    fault: "DNS failure",
    error: vendorError("getaddrinfo ENOTFOUND no-such-host.invalid", { level: "client-socket", code: "ENOTFOUND", errno: -3008 }),
    phase: "connect",
    name: "ConnectError",
    code: "CONNECT",
    retryable: true,
    errorPhase: "connect",
  },
  {
    fault: "DNS failure with forceIPv4 (client-dns, no code)",
    error: vendorError("Error while looking up IPv4 address for 'no-such-host.invalid': Error: getaddrinfo ENOTFOUND no-such-host.invalid", {
      level: "client-dns",
    }),
    phase: "connect",
    name: "ConnectError",
    code: "CONNECT",
    retryable: true,
    errorPhase: "connect",
  },
  {
    fault: "host unreachable",
    error: vendorError("connect EHOSTUNREACH 10.221.11.2:2213", { level: "client-socket", code: "EHOSTUNREACH" }),
    phase: "connect",
    name: "ConnectError",
    code: "CONNECT",
    retryable: true,
    errorPhase: "connect",
  },
  {
    fault: "handshake timeout / connect timeout (first of the two errors)",
    error: vendorError("Timed out while waiting for handshake", { level: "client-timeout" }),
    phase: "connect",
    name: "ConnectError",
    code: "CONNECT",
    retryable: true,
    errorPhase: "connect",
  },
  {
    fault: "TCP connect timeout from the socket",
    error: vendorError("connect ETIMEDOUT 10.221.11.2:2213", { level: "client-socket", code: "ETIMEDOUT" }),
    phase: "connect",
    name: "ConnectError",
    code: "CONNECT",
    retryable: true,
    errorPhase: "connect",
  },
  {
    fault: "host key mismatch",
    error: vendorError("Host denied (verification failed)", { level: "handshake" }),
    phase: "connect",
    name: "HostKeyError",
    code: "HOST_KEY",
    retryable: false,
    errorPhase: "connect",
  },
  // The server's MaxSessions (reason 2) and its resource shortage (4) are both a refusal.
  ...(
    [
      ["MaxSessions", "open failed", 2],
      ["resource shortage", "resource shortage", 4],
    ] as const
  ).map(([cause, text, reason]): Row => ({
    fault: `channel open failure (${cause})`,
    error: vendorError(`(SSH) Channel open failure: ${text}`, { reason }),
    phase: "channel",
    name: "ChannelError",
    code: "CHANNEL",
    retryable: true,
    errorPhase: "channel",
    refused: true,
  })),
  {
    fault: "channel open administratively prohibited",
    error: vendorError("(SSH) Channel open failure: administratively prohibited", { reason: 1 }),
    phase: "channel",
    name: "ChannelError",
    code: "CHANNEL",
    retryable: false,
    errorPhase: "channel",
    refused: false,
  },
  {
    fault: "jump host cannot reach the next hop (direct-tcpip refused)",
    error: vendorError("(SSH) Channel open failure: Connection refused", { reason: 2 }),
    phase: "connect",
    name: "ConnectError",
    code: "CONNECT",
    retryable: true,
    errorPhase: "connect",
  },
  {
    fault: "keepalive timeout (link black-holed)",
    error: vendorError("Keepalive timeout", { level: "client-timeout" }),
    phase: "exec",
    name: "ConnectError",
    code: "CONNECTION_LOST",
    retryable: true,
    errorPhase: "exec",
  },
  {
    fault: "RST mid-command",
    error: vendorError("read ECONNRESET", { level: "client-socket", code: "ECONNRESET", errno: -104 }),
    phase: "exec",
    name: "ConnectError",
    code: "CONNECTION_LOST",
    retryable: true,
    errorPhase: "exec",
  },
  {
    fault: "RST during the handshake",
    error: vendorError("read ECONNRESET", { level: "client-socket", code: "ECONNRESET" }),
    phase: "connect",
    name: "ConnectError",
    code: "CONNECT",
    retryable: true,
    errorPhase: "connect",
  },
  {
    fault: "MaxStartups exceeded",
    error: vendorError("Connection lost before handshake", { level: "protocol" }),
    phase: "connect",
    name: "ConnectError",
    code: "CONNECT",
    retryable: true,
    errorPhase: "connect",
  },
  {
    fault: "use after close (synchronous throw)",
    error: new Error("Not connected"),
    phase: "channel",
    name: "ConnectError",
    code: "CONNECTION_LOST",
    retryable: true,
    errorPhase: "channel",
  },
  {
    fault: "request pending when the connection closed",
    error: new Error("No response from server"),
    phase: "exec",
    name: "ConnectError",
    code: "CONNECTION_LOST",
    retryable: true,
    errorPhase: "exec",
  },
  {
    fault: "no common algorithm",
    error: vendorError("Handshake failed: no matching key exchange algorithm", { level: "handshake" }),
    phase: "connect",
    name: "ConnectError",
    code: "CONNECT",
    retryable: false,
    errorPhase: "connect",
  },
  {
    fault: "server disconnect: too many authentication failures",
    error: vendorError("Too many authentication failures", { code: 14 }),
    phase: "connect",
    name: "AuthenticationError",
    code: "AUTHENTICATION",
    retryable: false,
    errorPhase: "auth",
  },
  {
    fault: "SFTP no such file",
    error: vendorError("No such file", { code: 2 }),
    phase: "transfer",
    name: "TransferError",
    code: "TRANSFER",
    retryable: false,
    errorPhase: "transfer",
  },
  {
    fault: "local file missing",
    error: vendorError("ENOENT: no such file or directory, open '/nope'", { code: "ENOENT" }),
    phase: "transfer",
    name: "TransferError",
    code: "TRANSFER",
    retryable: false,
    errorPhase: "transfer",
  },
  {
    fault: "encrypted key without passphrase",
    error: new Error("Cannot parse privateKey: Encrypted private OpenSSH key detected, but no passphrase given"),
    phase: "connect",
    name: "ConfigError",
    code: "CONFIG",
    retryable: false,
    errorPhase: "validate",
  },
];

describe("normalizeError maps every ssh2 failure to a tunnel error", () => {
  it.each(rows)("$fault → $name $code", (row) => {
    const target = { host: "web-1", port: 2222, user: "deploy" };
    const error = normalizeError(row.error, { phase: row.phase, target });
    expect(error.name).toBe(row.name);
    expect(error.code).toBe(row.code);
    expect(error.retryable).toBe(row.retryable);
    expect(error.phase).toBe(row.errorPhase);
    expect(error.cause).toBe(row.error);
    if (row.refused !== undefined) expect((error as unknown as { refused: boolean }).refused).toBe(row.refused);
    if (row.code !== "CONFIG") expect(error.target).toEqual(target);
  });

  it("returns tunnel errors unchanged", () => {
    const error = normalizeError(new Error("Keepalive timeout"), { phase: "exec" });
    expect(normalizeError(error, { phase: "connect" })).toBe(error);
  });

  it("never puts a secret in the message", () => {
    const error = normalizeError(new Error("weird failure mentioning hunter2"), { phase: "connect", secrets: ["hunter2"] });
    expect(error.message).not.toContain("hunter2");
    expect(error.message).toContain("[redacted]");
  });

  it("maps non-Error values too", () => {
    expect(normalizeError("boom", { phase: "exec" }).code).toBe("CONNECTION_LOST");
  });
});
