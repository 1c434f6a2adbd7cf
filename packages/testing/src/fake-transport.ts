/**
 * An in-memory `Transport` for unit tests of code above the transport interface (pool, executor, CLI).
 *
 * Everything it does is scripted through the constructor: how connects go, what each spawned process prints and how
 * it ends, how pings go. Every call is logged in `calls`; every connection it made is in `connections`, where a test
 * can drop it or make it refuse channels. A call nothing was scripted for fails with a `FakeScriptError` naming it.
 * The connections are in `fake-connection.ts`, their processes in `fake-process.ts`; `localShellReply` and
 * `localFileCopy` script them to run commands and copy files on this machine.
 *
 * @example
 * const transport = new FakeTransport({
 *   connect: [{ error: new ConnectError("refused") }, {}],          // first connect fails, the second succeeds
 *   spawn: (request) => ({ stdout: `ran ${request.command}\n` }),   // every process prints, then exits 0
 * });
 */
import type { Readable, Writable } from "node:stream";
import {
  AbortError,
  ConfigError,
  TunnelError,
  describeOptionValue,
  rejectUnknownOptions,
  type ConnectionCapabilities,
  type ConnectOptions,
  type DownloadRequest,
  type ExitStatus,
  type Span,
  type SpawnRequest,
  type Target,
  type Transport,
  type UploadRequest,
} from "@tunnel-sh/core";
import { FakeConnection, wait } from "./fake-connection.js";

/** A test scripted the fake wrongly, or not at all, for this call. Deliberately not a `TunnelError`. */
export class FakeScriptError extends Error {
  override readonly name = "FakeScriptError";
}

/**
 * A script: one value for every call, a queue with one value per call (a call past its end fails), or a function
 * of the call's arguments.
 */
export type Scripted<T, Args extends unknown[]> = T | readonly T[] | ((...args: Args) => T | Promise<T>);

/** How one `connect()` goes. `{}` succeeds at once. */
export interface ConnectOutcome {
  /** Wait this long first (an abort during the wait rejects with `AbortError`). */
  readonly delayMs?: number;
  /**
   * Wait until the test settles the connect through `FakeTransport.held` (an abort rejects it with `AbortError`).
   * @example transport.held[0]?.resolve(); // the first held connect succeeds now
   */
  readonly hold?: boolean;
  /** Reject with this (use core's errors: `ConnectError`, `AuthenticationError`, `HostKeyError`, ...). */
  readonly error?: unknown;
  /** The new connection's `maxChannels` (default: the transport's option, else 10). */
  readonly maxChannels?: number;
  readonly capabilities?: Partial<ConnectionCapabilities>;
}

/** A plain scripted process: it starts, waits `delayMs`, prints, and exits. */
export interface SpawnResult {
  readonly stdout?: string | Uint8Array;
  readonly stderr?: string | Uint8Array;
  /** Default 0 (when `signal` is not set). */
  readonly exitCode?: number | null;
  /** Ends as killed by this signal (`"SIGTERM"`), with `exitCode` null. */
  readonly signal?: string | null;
  /** How long the process runs before it prints and exits. `kill()` during it ends the process. */
  readonly delayMs?: number;
  /** Fail instead: by default `started` (and so `exit`) rejects with it; with `errorAt: "exit"` only `exit` does. */
  readonly error?: unknown;
  readonly errorAt?: "started" | "exit";
}

/** What a handler process sees: the live streams, and kill notices. */
export interface FakeProcessIo {
  readonly request: SpawnRequest;
  readonly connection: FakeConnection;
  /** What the caller writes to the process's stdin. */
  readonly stdin: Readable;
  /** Write here to send output to the caller; ended for you when `run` settles. */
  readonly stdout: Writable;
  readonly stderr: Writable;
  /** Called with the signal name (`"SIGTERM"`) on `kill()`, on abort, and with `"SIGKILL"` when the connection closes. */
  onKill(listener: (signal: string) => void): void;
}

/** A process driven by code: `run` gets the live streams and resolves with the exit status (or rejects). */
export interface SpawnHandler {
  run(io: FakeProcessIo): ExitStatus | Promise<ExitStatus>;
}

/** A connect held by `ConnectOutcome.hold`, waiting for the test. */
export interface HeldConnect {
  readonly target: Target;
  /** Let the connect go on (after the outcome's `delayMs`, if any), optionally with other settings for the connection. */
  resolve(settings?: Pick<ConnectOutcome, "maxChannels" | "capabilities">): void;
  /** Fail the connect with `error`. */
  reject(error: unknown): void;
}

export type SpawnReply = SpawnResult | SpawnHandler;
export type SpawnReplyFunction = (request: SpawnRequest, connection: FakeConnection) => SpawnReply | Promise<SpawnReply>;

/** How one `ping()`, `upload()` or `download()` goes. `{}` succeeds at once. */
export interface FakeOutcome {
  readonly delayMs?: number;
  readonly error?: unknown;
}

export type TransferReplyFunction = (
  request: UploadRequest | DownloadRequest,
  connection: FakeConnection,
  direction: "upload" | "download",
) => FakeOutcome | Promise<FakeOutcome>;

export interface FakeTransportOptions {
  /** `Transport.name`. Default `"fake"`. */
  readonly name?: string;
  /** How connects go. Default: every connect succeeds at once. */
  readonly connect?: Scripted<ConnectOutcome, [target: Target, attempt: number]>;
  /** What spawned processes do. No default: an unscripted spawn fails with `FakeScriptError`. */
  readonly spawn?: SpawnReply | readonly SpawnReply[] | SpawnReplyFunction;
  /** How pings go. Default: they succeed. */
  readonly ping?: Scripted<FakeOutcome, [connection: FakeConnection]>;
  /** How uploads go (see `localFileCopy`). No default. */
  readonly upload?: FakeOutcome | readonly FakeOutcome[] | TransferReplyFunction;
  /** How downloads go (see `localFileCopy`). No default. */
  readonly download?: FakeOutcome | readonly FakeOutcome[] | TransferReplyFunction;
  /** `maxChannels` of every connection. Default 10. */
  readonly maxChannels?: number;
  /**
   * Channels the "server" accepts at once on one connection, like sshd's MaxSessions: more concurrent spawns are
   * refused with `ChannelError({ refused: true })`. Default: the connection's `maxChannels`.
   */
  readonly maxSessions?: number;
  /** Default `{ pty: true, signals: true, transfer: true }`. */
  readonly capabilities?: Partial<ConnectionCapabilities>;
  /** When given, the transport has `identity()` (the pool adds it to its key). */
  readonly identity?: (target: Target) => string;
}

/** One entry of `FakeTransport.calls`. */
export interface FakeCall {
  readonly type: "connect" | "spawn" | "kill" | "ping" | "close" | "upload" | "download";
  readonly target: Target;
  /** The connection's `id` (every call but `connect`). */
  readonly connection?: number;
  /** `spawn` and `kill`: the process's command. */
  readonly command?: string;
  /** `spawn`: whether a pty was asked for. */
  readonly pty?: boolean;
  /** `kill`: the signal. */
  readonly signal?: string;
  readonly localPath?: string;
  readonly remotePath?: string;
  /** `connect`: the options' `AbortSignal`. */
  readonly abortSignal?: AbortSignal;
  /** `connect`: the options' span (the pool's `tunnel.connect`). */
  readonly span?: Span;
}

const DEFAULT_CAPABILITIES: ConnectionCapabilities = { pty: true, signals: true, transfer: true };

function pick<T, Args extends unknown[]>(script: Scripted<T, Args> | undefined, fallback: T | undefined, label: string, args: Args): Promise<T> {
  if (script === undefined) {
    if (fallback !== undefined) return Promise.resolve(fallback);
    return Promise.reject(new FakeScriptError(`FakeTransport: nothing scripted for ${label}; pass it to the constructor`));
  }
  if (typeof script === "function") {
    try {
      return Promise.resolve((script as (...args: Args) => T | Promise<T>)(...args));
    } catch (error) {
      return Promise.reject(error);
    }
  }
  if (Array.isArray(script)) {
    const queue = script as T[];
    const next = queue.shift();
    if (next === undefined) {
      return Promise.reject(new FakeScriptError(`FakeTransport: the scripted queue for ${label} is used up`));
    }
    return Promise.resolve(next);
  }
  return Promise.resolve(script as T);
}

/** Every option name; `satisfies` makes the compiler refuse a list that misses one. */
const FAKE_TRANSPORT_OPTIONS = Object.keys({
  name: true,
  connect: true,
  spawn: true,
  ping: true,
  upload: true,
  download: true,
  maxChannels: true,
  maxSessions: true,
  capabilities: true,
  identity: true,
} satisfies Record<keyof FakeTransportOptions, true>);

export class FakeTransport implements Transport {
  readonly name: string;
  /** Every call made on the transport and its connections, in order. */
  readonly calls: FakeCall[] = [];
  /** Every connection `connect()` returned, in order. */
  readonly connections: FakeConnection[] = [];
  /** Connects held by `ConnectOutcome.hold`, in order (settled ones stay in the list; settling twice does nothing). */
  readonly held: HeldConnect[] = [];
  readonly identity?: (target: Target) => string;
  readonly #options: FakeTransportOptions;
  readonly #queues = new Map<string, unknown[]>();
  #connectAttempts = 0;
  #nextId = 1;
  #connecting = 0;
  #peak = 0;

  /** Throws `ConfigError` for an unknown option, before any scripted call. */
  constructor(options: FakeTransportOptions = {}) {
    rejectUnknownOptions(options, FAKE_TRANSPORT_OPTIONS, "FakeTransport");
    if (options.maxChannels !== undefined && !(Number.isInteger(options.maxChannels) && options.maxChannels >= 1)) {
      throw new ConfigError("maxChannels", `must be a positive integer, got ${describeOptionValue(options.maxChannels)}`);
    }
    if (options.maxSessions !== undefined && !(Number.isInteger(options.maxSessions) && options.maxSessions >= 1)) {
      throw new ConfigError("maxSessions", `must be a positive integer, got ${describeOptionValue(options.maxSessions)}`);
    }
    if (options.identity !== undefined && typeof options.identity !== "function") {
      throw new ConfigError("identity", `must be a function, got ${describeOptionValue(options.identity)}`);
    }
    this.#options = options;
    this.name = options.name ?? "fake";
    if (options.identity) this.identity = options.identity;
  }

  /** Connects in flight now. */
  get connecting(): number {
    return this.#connecting;
  }

  /** The most connections open or being opened at the same time, so far. */
  get peak(): number {
    return this.#peak;
  }

  /** Connections not closed yet. */
  openConnections(): FakeConnection[] {
    return this.connections.filter((connection) => !connection.closed);
  }

  #notePeak(): void {
    this.#peak = Math.max(this.#peak, this.openConnections().length + this.#connecting);
  }

  /** The calls of one type, e.g. `transport.callsOf("spawn").map((call) => call.command)`. */
  callsOf(type: FakeCall["type"]): FakeCall[] {
    return this.calls.filter((call) => call.type === type);
  }

  async connect(target: Target, options: ConnectOptions = {}): Promise<FakeConnection> {
    this.calls.push({
      type: "connect",
      target,
      ...(options.signal ? { abortSignal: options.signal } : {}),
      ...(options.span ? { span: options.span } : {}),
    });
    this.#connectAttempts += 1;
    if (options.signal?.aborted) throw new AbortError(undefined, { target, phase: "connect" });
    this.#connecting += 1;
    this.#notePeak();
    let connection: FakeConnection;
    try {
      let outcome = await pick(this.#script("connect", this.#options.connect), {}, `connect(${describe(target)})`, [target, this.#connectAttempts] as [
        Target,
        number,
      ]);
      if (outcome.hold) outcome = { ...outcome, ...(await this.#hold(target, options.signal)) };
      try {
        await wait(outcome.delayMs, options.signal, target);
      } catch (error) {
        throw TunnelError.is(error) ? new AbortError(undefined, { target, phase: "connect" }) : error;
      }
      if (outcome.error !== undefined) throw outcome.error;
      connection = new FakeConnection(this, this.#nextId++, target, {
        maxChannels: outcome.maxChannels ?? this.#options.maxChannels ?? 10,
        maxSessions: this.#options.maxSessions,
        capabilities: { ...DEFAULT_CAPABILITIES, ...this.#options.capabilities, ...outcome.capabilities },
      });
    } finally {
      this.#connecting -= 1;
    }
    this.connections.push(connection);
    this.#notePeak();
    return connection;
  }

  /** Park a connect in `held` until the test settles it, or its signal aborts. */
  #hold(target: Target, signal: AbortSignal | undefined): Promise<Pick<ConnectOutcome, "maxChannels" | "capabilities">> {
    return new Promise((resolve, reject) => {
      let settled = false;
      const settle = (finish: () => void) => {
        if (settled) return;
        settled = true;
        signal?.removeEventListener("abort", onAbort);
        finish();
      };
      const onAbort = () => settle(() => reject(new AbortError(undefined, { target, phase: "connect" })));
      signal?.addEventListener("abort", onAbort, { once: true });
      this.held.push({
        target,
        resolve: (settings = {}) => settle(() => resolve(settings)),
        reject: (error) => settle(() => reject(error)),
      });
    });
  }

  /** A private copy of a queue script, so that two transports built from one options object don't share it. */
  #script<S>(key: string, script: S): S {
    if (!Array.isArray(script)) return script;
    let queue = this.#queues.get(key);
    if (!queue) {
      queue = [...(script as unknown[])];
      this.#queues.set(key, queue);
    }
    return queue as S;
  }

  /** @internal */
  spawnReply(request: SpawnRequest, connection: FakeConnection): Promise<SpawnReply> {
    return pick(this.#script("spawn", this.#options.spawn), undefined, `spawn(${JSON.stringify(request.command)})`, [request, connection] as [
      SpawnRequest,
      FakeConnection,
    ]);
  }

  /** @internal */
  pingReply(connection: FakeConnection): Promise<FakeOutcome> {
    return pick(this.#script("ping", this.#options.ping), {}, "ping()", [connection] as [FakeConnection]);
  }

  /** @internal */
  transferReply(kind: "upload" | "download", request: UploadRequest | DownloadRequest, connection: FakeConnection): Promise<FakeOutcome> {
    const script = this.#script(kind, kind === "upload" ? this.#options.upload : this.#options.download);
    return pick(script, undefined, `${kind}(${JSON.stringify(request.remotePath)})`, [request, connection, kind] as [
      UploadRequest | DownloadRequest,
      FakeConnection,
      "upload" | "download",
    ]);
  }
}

function describe(target: Target): string {
  return `${target.user ? `${target.user}@` : ""}${target.host}${target.port !== undefined ? `:${target.port}` : ""}`;
}
