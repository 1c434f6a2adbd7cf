import { describe, expect, it } from "vitest";
import { normalizeSshError, type SshFailurePhase } from "../src/normalize-error.js";

const target = { host: "127.0.0.1", port: 2211, user: "tunnel_plain" };

// The OpenSSH column of the fault table (ssh-test-environment.md §5): what ssh 9.2 printed, and what tunnel makes of it.
const rows: ReadonlyArray<{
  fault: string;
  phase: SshFailurePhase;
  stderr: string;
  code: string;
  retryable: boolean;
  extra?: Record<string, unknown>;
}> = [
  {
    fault: "auth failure (wrong key / unknown user / wrong password)",
    phase: "connect",
    stderr: "tunnel_plain@127.0.0.1: Permission denied (publickey,password,keyboard-interactive).",
    code: "AUTHENTICATION",
    retryable: false,
  },
  {
    fault: "connection refused",
    phase: "connect",
    stderr: "ssh: connect to host 127.0.0.1 port 2219: Connection refused",
    code: "CONNECT",
    retryable: true,
  },
  {
    fault: "DNS failure",
    phase: "connect",
    stderr: "ssh: Could not resolve hostname no-such-host.invalid: Name or service not known",
    code: "CONNECT",
    retryable: true,
  },
  {
    fault: "host unreachable",
    phase: "connect",
    stderr: "ssh: connect to host 10.221.11.2 port 2213: No route to host",
    code: "CONNECT",
    retryable: true,
  },
  {
    fault: "handshake timeout (TCP up, no banner)",
    phase: "connect",
    stderr: "Connection timed out during banner exchange\nConnection to 127.0.0.1 port 2214 timed out",
    code: "CONNECT",
    retryable: true,
  },
  {
    fault: "connect timeout (SYN dropped)",
    phase: "connect",
    stderr: "ssh: connect to host 10.221.11.2 port 2213: Connection timed out",
    code: "CONNECT",
    retryable: true,
  },
  {
    fault: "host key mismatch",
    phase: "connect",
    stderr: [
      "@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@",
      "@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @",
      "@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@",
      "IT IS POSSIBLE THAT SOMEONE IS DOING SOMETHING NASTY!",
      "The fingerprint for the ED25519 key sent by the remote host is",
      "SHA256:zK38oEZnGllR51Cyi9t5AmrlZR2JYKBOx/eiMSuJ6sE.",
      "Offending ED25519 key in /tmp/known_hosts.bad:1",
      "Host key for [127.0.0.1]:2211 has changed and you have requested strict checking.",
      "Host key verification failed.",
    ].join("\n"),
    code: "HOST_KEY",
    retryable: false,
    extra: { fingerprint: "SHA256:zK38oEZnGllR51Cyi9t5AmrlZR2JYKBOx/eiMSuJ6sE" },
  },
  {
    fault: "unknown host key",
    phase: "connect",
    stderr: "No ED25519 host key is known for [127.0.0.1]:2211 and you have requested strict checking.\nHost key verification failed.",
    code: "HOST_KEY",
    retryable: false,
  },
  {
    fault: "channel open failure (MaxSessions) through the master",
    phase: "channel",
    stderr:
      "mux_client_request_session: session request failed: Session open refused by peer\nkex_exchange_identification: Connection closed by remote host\nConnection closed by UNKNOWN port 65535",
    code: "CHANNEL",
    retryable: true,
    extra: { refused: true },
  },
  {
    fault: "master gone (socket removed), fallback blocked by ProxyCommand=/bin/false",
    phase: "channel",
    stderr: "kex_exchange_identification: Connection closed by remote host\nConnection closed by UNKNOWN port 65535",
    code: "CONNECTION_LOST",
    retryable: true,
  },
  {
    fault: "master killed, stale socket",
    phase: "channel",
    stderr:
      "Control socket connect(/tmp/tunnel-ssh-x/s): Connection refused\nkex_exchange_identification: Connection closed by remote host\nConnection closed by UNKNOWN port 65535",
    code: "CONNECTION_LOST",
    retryable: true,
  },
  {
    fault: "keepalive timeout (link black-holed)",
    phase: "lost",
    stderr: "Timeout, server 127.0.0.1 not responding.",
    code: "CONNECTION_LOST",
    retryable: true,
  },
  {
    fault: "RST mid-command",
    phase: "lost",
    stderr: "client_loop: send disconnect: Broken pipe",
    code: "CONNECTION_LOST",
    retryable: true,
  },
  {
    fault: "FIN / sshd child killed / server crash",
    phase: "lost",
    stderr: "Connection to 127.0.0.1 closed by remote host.",
    code: "CONNECTION_LOST",
    retryable: true,
  },
  {
    fault: "ControlMaster killed mid-command (no message)",
    phase: "lost",
    stderr: "",
    code: "CONNECTION_LOST",
    retryable: true,
  },
  {
    fault: "MaxStartups exceeded",
    phase: "connect",
    stderr: "kex_exchange_identification: Connection closed by remote host\nConnection closed by 127.0.0.1 port 2217",
    code: "CONNECT",
    retryable: true,
  },
  {
    fault: "bad option in a config file",
    phase: "connect",
    stderr: "/tmp/cfg: line 2: Bad configuration option: frobnicate\n/tmp/cfg: terminating, 1 bad configuration options",
    code: "CONFIG",
    retryable: false,
  },
  {
    fault: "no common algorithm",
    phase: "connect",
    stderr: "Unable to negotiate with 127.0.0.1 port 2211: no matching host key type found. Their offer: ssh-rsa",
    code: "CONNECT",
    retryable: false,
  },
];

describe("normalizeSshError maps what ssh prints to tunnel errors", () => {
  it.each(rows)("$fault -> $code", ({ phase, stderr, code, retryable, extra }) => {
    const error = normalizeSshError({ phase, stderr, exitCode: 255, target });
    expect(error.code).toBe(code);
    expect(error.retryable).toBe(retryable);
    expect(error.target).toEqual(target);
    if (extra) expect(error).toMatchObject(extra);
  });

  it("keeps only ssh's conclusion of the host key banner in the message", () => {
    const row = rows.find((candidate) => candidate.code === "HOST_KEY")!;
    const error = normalizeSshError({ phase: "connect", stderr: row.stderr, exitCode: 255, target });
    expect(error.message).toContain("Host key verification failed");
    expect(error.message).not.toContain("@@@@");
  });

  it("keeps ssh's reason for refusing a host certificate (OpenSSH 9.2's lines)", () => {
    const stderr = [
      "Certificate invalid: expired",
      "No ED25519 host key is known for [127.0.0.1]:38415 and you have requested strict checking.",
      "Host key verification failed.",
    ].join("\n");
    const error = normalizeSshError({ phase: "connect", stderr, exitCode: 255, target });
    expect(error.code).toBe("HOST_KEY");
    expect(error.message).toContain("Certificate invalid: expired / No ED25519 host key is known");
  });

  it("a connect failure with nothing recognisable is still a typed, retryable connect error", () => {
    const error = normalizeSshError({ phase: "connect", stderr: "something new", exitCode: 255, target });
    expect(error.code).toBe("CONNECT");
    expect(error.message).toContain("something new");
  });

  it("a session failure with nothing recognisable is a channel error", () => {
    const error = normalizeSshError({ phase: "channel", stderr: "", exitCode: 255, target });
    expect(error.code).toBe("CHANNEL");
    expect(error.message).toContain("255");
  });
});
