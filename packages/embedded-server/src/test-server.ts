/** What `startTestServer` takes and returns. */
import type { SessionHelper } from "./embedded-server-session.js";

export interface TestServerUser {
  /** The SSH user name. Commands run as the current OS user whatever the name. */
  readonly name: string;
  /** The accepted password. Without one, password authentication fails for this user. */
  readonly password?: string;
  /**
   * Accepted public keys, as OpenSSH lines (`ssh-ed25519 AAAA... comment`). Default: the server's generated client
   * key (`clientKeyPath`). `[]` turns key authentication off for this user.
   */
  readonly publicKeys?: readonly string[];
}

/**
 * Faults the server injects. The object is live: change its fields on `server.faults` at any time; new connections
 * and channels see the new values.
 */
export interface TestServerFaults {
  /** Accept TCP connections but never send the SSH banner (the client waits for the handshake). */
  stallHandshake?: boolean;
  /** Hold each new connection this long before the SSH exchange starts. */
  handshakeDelayMs?: number;
  /** Answer each session channel open this long after it was asked for. */
  channelDelayMs?: number;
  /** Refuse this many of the next session channels (`Infinity`: all), as sshd refuses past MaxSessions. */
  refuseChannels?: number;
  /**
   * Drop each connection once it has carried this many bytes, both directions together, counted from the TCP
   * connect (the handshake takes about 3 KB): the server sends nothing past the limit, then closes the socket.
   */
  dropAfterBytes?: number;
}

export interface TestServerOptions {
  /** Default 0: a free port. The server listens on 127.0.0.1 only. */
  readonly port?: number;
  /** Default: one user named after the current OS user, with a generated password and the generated client key. */
  readonly users?: readonly TestServerUser[];
  /** Session channels open at once per connection, as sshd's MaxSessions. Default 10. */
  readonly maxSessions?: number;
  /**
   * A folder that SFTP sees as `/` and commands start in. Default: none — SFTP paths are the real filesystem's,
   * relative ones (and commands) start in the current user's home folder.
   */
  readonly root?: string;
  /** Names of env requests to accept; `*` matches any run of characters. Default `["*"]`; others are refused. */
  readonly acceptEnv?: readonly string[];
  /** Variables added to every command's environment (before env requests). */
  readonly env?: Readonly<Record<string, string>>;
  /** Faults active from the start (see `TestServer.faults`). */
  readonly faults?: TestServerFaults;
  /**
   * The small program that serves each session and reports its command's exact exit status: `perl` starts in a few
   * milliseconds, `node` (this Node binary) in about 50 and needs nothing else. Default `auto`: Perl when installed.
   */
  readonly sessionHelper?: "auto" | SessionHelper;
}

export interface ResolvedTestServerUser {
  readonly name: string;
  readonly password: string | undefined;
  readonly publicKeys: readonly string[];
}

export interface TestServer {
  /** Always `127.0.0.1`. */
  readonly host: string;
  readonly port: number;
  /** The first user: `{ host, port, user }` to connect to. */
  readonly target: { readonly host: string; readonly port: number; readonly user: string };
  readonly users: readonly ResolvedTestServerUser[];
  /** `ssh-ed25519 AAAA...` */
  readonly hostPublicKey: string;
  /** `[127.0.0.1]:PORT ssh-ed25519 AAAA...` */
  readonly knownHostsLine: string;
  /** A file holding `knownHostsLine`. */
  readonly knownHostsPath: string;
  /** A generated ed25519 private key (OpenSSH format, mode 0600), accepted for users without `publicKeys`. */
  readonly clientKeyPath: string;
  /** Its public half, `ssh-ed25519 AAAA... comment`. */
  readonly clientPublicKey: string;
  /** A private folder for the key files; removed by `close()`. */
  readonly dir: string;
  /** Live fault settings (see `TestServerFaults`). */
  readonly faults: TestServerFaults;
  /** TCP connections open now (stalled ones included). */
  readonly connections: number;
  /** Commands running now. */
  readonly runningCommands: number;
  /** Drop every open connection now (FIN), as a crashed server would; their commands are hung up. */
  dropConnections(): void;
  /** Stop listening, drop every connection, kill every command, remove `dir`. Idempotent. */
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}
