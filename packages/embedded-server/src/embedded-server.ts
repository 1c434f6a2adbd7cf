/**
 * An SSH server inside the test process, built on ssh2's server side: key and password auth for configured users,
 * exec (with env, pty, signals and exact exit statuses) as the user running the tests, SFTP over the local disk, a
 * MaxSessions limit, and fault hooks. No root, no sshd, no accounts: Linux and Node are enough.
 *
 * Commands run on this machine, as the current OS user, whatever SSH user name authenticated.
 */
import { timingSafeEqual, createHash } from "node:crypto";
import { rmSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer, type Server as NetServer, type Socket } from "node:net";
import { homedir, tmpdir, userInfo } from "node:os";
import { join } from "node:path";
import ssh2, { type AuthContext, type Connection, type ParsedKey, type Server as SshServer } from "ssh2";
import { serveSession, type SessionContext, type SessionHelper, type SessionProcess } from "./embedded-server-session.js";
import { serveSftp } from "./embedded-server-sftp.js";
import {
  TEST_SERVER_FAULT_OPTIONS,
  TEST_SERVER_OPTIONS,
  TEST_SERVER_USER_OPTIONS,
  TestServerOptionError,
  rejectUnknownTestServerOptions,
} from "./test-server-options.js";
import type { ResolvedTestServerUser, TestServer, TestServerFaults, TestServerOptions } from "./test-server.js";
import {
  DEFAULT_PATH,
  INSTANCE_PREFIX,
  detectSessionHelper,
  generateEd25519,
  onPath,
  perlWorks,
  resolveUsers,
  sweepStaleFoldersOnce,
} from "./embedded-server-setup.js";

/**
 * Start an embedded SSH server on 127.0.0.1. An unknown or unusable option (in `options`, a user or `faults`) is a
 * `TestServerOptionError` naming it, before any key is generated or port opened.
 * @example
 * const server = await startTestServer();
 * const transport = new Ssh2Transport({ identityFile: server.clientKeyPath, knownHostsFile: server.knownHostsPath });
 * const connection = await transport.connect(server.target);
 * // ...
 * await server.close();
 */
export async function startTestServer(options: TestServerOptions = {}): Promise<TestServer> {
  rejectUnknownTestServerOptions(options, TEST_SERVER_OPTIONS, "");
  rejectUnknownTestServerOptions(options.faults, TEST_SERVER_FAULT_OPTIONS, "faults");
  if (options.users !== undefined && !Array.isArray(options.users)) {
    throw new TestServerOptionError("users", "must be an array of users");
  }
  options.users?.forEach((user, index) => rejectUnknownTestServerOptions(user, TEST_SERVER_USER_OPTIONS, `users[${index}]`));
  const maxSessions = options.maxSessions ?? 10;
  if (!Number.isInteger(maxSessions) || maxSessions < 1) {
    throw new TestServerOptionError("maxSessions", "must be a positive integer");
  }
  const requested = options.sessionHelper ?? "auto";
  const helper = requested === "auto" ? await detectSessionHelper() : requested;
  if (helper === "perl" && !(await perlWorks())) {
    throw new TestServerOptionError("sessionHelper", "perl with POSIX cannot run here");
  }
  await sweepStaleFoldersOnce();
  const dir = await mkdtemp(join(tmpdir(), `${INSTANCE_PREFIX}${process.pid}-`));
  try {
    const hostKey = generateEd25519("tunnel-test-server-host");
    const clientKey = generateEd25519("tunnel-test-server-client");
    const clientKeyPath = join(dir, "client_ed25519");
    await writeFile(clientKeyPath, clientKey.private, { mode: 0o600 });
    await writeFile(`${clientKeyPath}.pub`, `${clientKey.public.trim()}\n`, { mode: 0o644 });
    const users = resolveUsers(options.users, clientKey.public.trim());
    const keys = { host: hostKey.private, clientPath: clientKeyPath, clientPublic: clientKey.public.trim() };
    const instance = new EmbeddedServer(dir, options, users, keys, maxSessions, helper);
    await instance.listen(options.port ?? 0);
    await writeFile(instance.knownHostsPath, `${instance.knownHostsLine}\n`);
    return instance;
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
}

/** Every live server, so that a test process that exits without `close()` leaves no command behind. */
const live = new Set<EmbeddedServer>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once("exit", () => {
    for (const server of live) server.killNowSync();
  });
}

/** One TCP connection: its socket, its ssh2 connection once the client spoke, its sessions. */
interface ConnectionState {
  readonly socket: Socket;
  bytes: number;
  ssh: Connection | undefined;
  /** The user that authenticated. */
  user: string | undefined;
  sessions: number;
  readonly processes: Set<SessionProcess>;
  /** The handshake delay. */
  timer: NodeJS.Timeout | undefined;
  /** Channel opens being delayed. */
  readonly channelTimers: Set<NodeJS.Timeout>;
}

class EmbeddedServer implements TestServer {
  readonly host = "127.0.0.1";
  port = 0;
  readonly knownHostsPath: string;
  readonly hostPublicKey: string;
  readonly clientKeyPath: string;
  readonly clientPublicKey: string;
  readonly faults: TestServerFaults;
  readonly #listener: NetServer;
  readonly #ssh: SshServer;
  readonly #states = new Set<ConnectionState>();
  /** Connections by the client's port (loopback only: the port names the connection). */
  readonly #byClientPort = new Map<number, ConnectionState>();
  readonly #processes = new Set<SessionProcess>();
  readonly #keys: Map<string, ParsedKey[]>;
  readonly #acceptEnv: (name: string) => boolean;
  readonly #ptyAvailable = onPath("script");
  #closing: Promise<void> | undefined;

  constructor(
    readonly dir: string,
    private readonly options: TestServerOptions,
    readonly users: readonly ResolvedTestServerUser[],
    keys: { readonly host: string; readonly clientPath: string; readonly clientPublic: string },
    private readonly maxSessions: number,
    private readonly helper: SessionHelper,
  ) {
    this.knownHostsPath = join(dir, "known_hosts");
    this.clientKeyPath = keys.clientPath;
    this.clientPublicKey = keys.clientPublic;
    const hostPrivateKey = keys.host;
    const parsedHostKey = ssh2.utils.parseKey(hostPrivateKey);
    if (parsedHostKey instanceof Error) throw parsedHostKey;
    this.hostPublicKey = `ssh-ed25519 ${parsedHostKey.getPublicSSH().toString("base64")}`;
    this.faults = { ...options.faults };
    this.#keys = new Map(users.map((user) => [user.name, user.publicKeys.map((key) => ssh2.utils.parseKey(key) as ParsedKey)]));
    const patterns = (options.acceptEnv ?? ["*"]).map((pattern) => new RegExp(`^${pattern.replace(/[.+?^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*")}$`));
    this.#acceptEnv = (name) => patterns.some((pattern) => pattern.test(name));
    this.#ssh = new ssh2.Server({ hostKeys: [hostPrivateKey], ident: "tunnel-test-server" });
    this.#ssh.on("connection", (client, info) => this.#onClient(client, info.port));
    this.#ssh.on("error", () => {
      // per-connection errors are handled on each connection
    });
    this.#listener = createServer((socket) => this.#onSocket(socket));
  }

  get knownHostsLine(): string {
    return `[${this.host}]:${this.port} ${this.hostPublicKey}`;
  }

  get target(): TestServer["target"] {
    return { host: this.host, port: this.port, user: this.users[0]!.name };
  }

  get connections(): number {
    return this.#states.size;
  }

  get runningCommands(): number {
    return this.#processes.size;
  }

  listen(port: number): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#listener.once("error", reject);
      this.#listener.listen(port, this.host, () => {
        this.#listener.off("error", reject);
        const address = this.#listener.address();
        this.port = typeof address === "object" && address ? address.port : port;
        live.add(this);
        installExitHook();
        resolve();
      });
    });
  }

  #onSocket(socket: Socket): void {
    if (this.#closing) {
      socket.destroy();
      return;
    }
    const state: ConnectionState = {
      socket,
      bytes: 0,
      ssh: undefined,
      user: undefined,
      sessions: 0,
      processes: new Set(),
      timer: undefined,
      channelTimers: new Set(),
    };
    this.#states.add(state);
    socket.on("error", () => {
      // a reset by the client; `close` follows
    });
    socket.once("close", () => this.#onSocketClosed(state));
    if (this.faults.stallHandshake) {
      socket.resume(); // read and discard: the client hears nothing back
      return;
    }
    const delay = this.faults.handshakeDelayMs ?? 0;
    if (delay > 0) {
      state.timer = setTimeout(() => {
        state.timer = undefined;
        if (!socket.destroyed) this.#startSsh(state);
      }, delay);
    } else this.#startSsh(state);
  }

  #startSsh(state: ConnectionState): void {
    const { socket } = state;
    if (socket.remotePort !== undefined) this.#byClientPort.set(socket.remotePort, state);
    this.#ssh.injectSocket(socket);
    // Counted after ssh2 took the socket: its own reader is attached by then, so no bytes are lost.
    socket.on("data", (chunk: Buffer) => this.#count(state, chunk.length));
    // eslint-disable-next-line @typescript-eslint/unbound-method -- called below with the socket as `this`
    const write = socket.write;
    socket.write = ((chunk: unknown, ...rest: unknown[]) => {
      let data = typeof chunk === "string" ? Buffer.from(chunk) : (chunk as Uint8Array);
      const limit = this.faults.dropAfterBytes;
      // The last chunk before a drop is cut, so the peer never gets more than `limit` bytes in all.
      if (limit !== undefined && state.bytes + data.byteLength > limit) data = data.subarray(0, Math.max(0, limit - state.bytes));
      const result = (write as (...args: unknown[]) => boolean).call(socket, data, ...rest);
      this.#count(state, data.byteLength);
      return result;
    }) as Socket["write"];
  }

  #count(state: ConnectionState, length: number): void {
    state.bytes += length;
    const limit = this.faults.dropAfterBytes;
    if (limit !== undefined && state.bytes >= limit && !state.socket.destroyed) state.socket.destroy();
  }

  #onSocketClosed(state: ConnectionState): void {
    clearTimeout(state.timer);
    for (const timer of state.channelTimers) clearTimeout(timer);
    state.channelTimers.clear();
    this.#states.delete(state);
    if (state.socket.remotePort !== undefined && this.#byClientPort.get(state.socket.remotePort) === state) {
      this.#byClientPort.delete(state.socket.remotePort);
    }
    for (const command of state.processes) command.hangUp();
  }

  #onClient(client: Connection, clientPort: number): void {
    const state = this.#byClientPort.get(clientPort);
    if (!state) {
      client.end();
      return;
    }
    state.ssh = client;
    client.on("error", () => {
      // a lost client: the socket's `close` cleans up
    });
    client.on("authentication", (context) => this.#authenticate(context, state));
    client.on("ready", () => {
      client.on("session", (accept, reject) => {
        if (this.#refuseChannel() || state.sessions >= this.maxSessions) {
          reject();
          return;
        }
        state.sessions++;
        const open = () => {
          if (state.socket.destroyed) return;
          const session = accept();
          session.once("close", () => state.sessions--);
          serveSession(session, this.#sessionContext(state));
        };
        const delay = this.faults.channelDelayMs ?? 0;
        if (delay > 0) {
          const timer = setTimeout(() => {
            state.channelTimers.delete(timer);
            open();
          }, delay);
          state.channelTimers.add(timer);
        } else open();
      });
    });
  }

  #refuseChannel(): boolean {
    const refuse = this.faults.refuseChannels ?? 0;
    if (refuse <= 0) return false;
    this.faults.refuseChannels = refuse - 1;
    return true;
  }

  #sessionContext(state: ConnectionState): SessionContext {
    const socket = state.socket;
    return {
      user: state.user ?? this.target.user,
      env: this.#environment(socket),
      cwd: this.options.root ?? homedir(),
      acceptEnv: this.#acceptEnv,
      helper: this.helper,
      ptyAvailable: this.#ptyAvailable,
      // Each command is known to its connection (hung up when it drops) and to the server (killed by close()).
      track: (command) => {
        state.processes.add(command);
        this.#processes.add(command);
      },
      untrack: (command) => {
        state.processes.delete(command);
        this.#processes.delete(command);
      },
      serverProcessKilled: () => {
        if (!socket.destroyed) socket.destroy();
      },
      serveSftp: (accept) => serveSftp(accept, { root: this.options.root, home: homedir() }),
    };
  }

  #environment(socket: Socket): Record<string, string> {
    const account = userInfo();
    return {
      HOME: account.homedir,
      USER: account.username,
      LOGNAME: account.username,
      SHELL: "/bin/sh",
      PATH: process.env["PATH"] ?? DEFAULT_PATH,
      SSH_CLIENT: `${socket.remoteAddress ?? "127.0.0.1"} ${socket.remotePort ?? 0} ${this.port}`,
      SSH_CONNECTION: `${socket.remoteAddress ?? "127.0.0.1"} ${socket.remotePort ?? 0} ${this.host} ${this.port}`,
      ...this.options.env,
    };
  }

  #authenticate(context: AuthContext, state: ConnectionState): void {
    const methods: Array<"publickey" | "password"> = ["publickey", "password"];
    const user = this.users.find((candidate) => candidate.name === context.username);
    if (!user) {
      context.reject(methods);
      return;
    }
    if (context.method === "password") {
      if (user.password !== undefined && sameSecret(context.password, user.password)) {
        state.user = user.name;
        context.accept();
      } else context.reject(methods);
      return;
    }
    if (context.method === "publickey") {
      const key = (this.#keys.get(user.name) ?? []).find((candidate) => candidate.getPublicSSH().equals(context.key.data));
      if (!key) {
        context.reject(methods);
        return;
      }
      // Without a signature the client only asks whether the key would do.
      if (!context.signature || !context.blob) {
        context.accept();
        return;
      }
      if (key.verify(context.blob, context.signature, context.hashAlgo)) {
        state.user = user.name;
        context.accept();
      } else context.reject(methods);
      return;
    }
    context.reject(methods);
  }

  dropConnections(): void {
    for (const state of this.#states) state.socket.destroy();
  }

  close(): Promise<void> {
    this.#closing ??= (async () => {
      const stopped = new Promise<void>((resolve) => this.#listener.close(() => resolve()));
      for (const state of this.#states) {
        clearTimeout(state.timer);
        state.socket.destroy();
      }
      const running = [...this.#processes];
      for (const command of running) command.killNow();
      await within(Promise.all(running.map((command) => command.exited)), 5_000);
      this.#processes.clear();
      await stopped;
      live.delete(this);
      await rm(this.dir, { recursive: true, force: true });
    })();
    return this.#closing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /** Synchronous clean-up for the process's exit hook. */
  killNowSync(): void {
    for (const command of this.#processes) command.killNow();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Wait for `promise`, but no longer than `ms`. */
async function within(promise: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([promise, new Promise((resolve) => (timer = setTimeout(resolve, ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

function sameSecret(given: string, expected: string): boolean {
  const digest = (value: string) => createHash("sha256").update(value).digest();
  return timingSafeEqual(digest(given), digest(expected));
}
