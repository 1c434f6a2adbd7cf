/**
 * An in-memory `Transport` for unit tests of code above the transport interface (pool, executor, CLI).
 *
 * Everything it does is scripted through the constructor: how connects go, what each spawned process prints and how
 * it ends, how pings go. Every call is logged in `calls`; every connection it made is in `connections`, where a test
 * can drop it or make it refuse channels. A call nothing was scripted for fails with a `FakeScriptError` naming it.
 *
 * @example
 * const transport = new FakeTransport({
 *   connect: [{ error: new ConnectError("refused") }, {}],          // first connect fails, the second succeeds
 *   spawn: (request) => ({ stdout: `ran ${request.command}\n` }),   // every process prints, then exits 0
 * });
 */
import { createReadStream, createWriteStream } from "node:fs";
import { stat } from "node:fs/promises";
import { PassThrough, type Readable, type Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import {
  AbortError,
  ChannelError,
  ConfigError,
  ConnectError,
  TransferError,
  TunnelError,
  describeOptionValue,
  rejectUnknownOptions,
  type Connection,
  type ConnectionCapabilities,
  type ConnectOptions,
  type DownloadRequest,
  type ExitStatus,
  type RemoteProcess,
  type Span,
  type SpawnRequest,
  type Target,
  type Transport,
  type UploadRequest,
} from "@tunnel-sh/core";

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

/**
 * Copies files on this machine as a transport moves them: `upload` copies `localPath` to `remotePath`, `download`
 * the other way. The destination is created (with the upload's `mode`, through the umask) or truncated (keeping its
 * own mode); progress is reported per chunk and last at exactly the size; a failure is a `TransferError`, an abort an
 * `AbortError`.
 * @example new FakeTransport({ upload: localFileCopy, download: localFileCopy })
 */
export const localFileCopy: TransferReplyFunction = async (request, connection, direction) => {
  const [from, to] = direction === "upload" ? [request.localPath, request.remotePath] : [request.remotePath, request.localPath];
  const target = connection.target;
  const mode = direction === "upload" ? (request as UploadRequest).mode : undefined;
  try {
    const total = (await stat(from)).size;
    let bytes = 0;
    const startedAt = performance.now();
    const report = () => {
      const seconds = Math.max((performance.now() - startedAt) / 1000, 1e-3);
      request.onProgress?.({ bytes, total, rate: bytes / seconds });
    };
    await pipeline(
      createReadStream(from),
      async function* (source: AsyncIterable<Buffer>) {
        for await (const chunk of source) {
          bytes += chunk.length;
          if (bytes < total) report();
          yield chunk;
        }
      },
      createWriteStream(to, mode !== undefined ? { mode } : {}),
      ...(request.signal ? [{ signal: request.signal }] : []),
    );
    report();
  } catch (error) {
    if (request.signal?.aborted) throw new AbortError(undefined, { phase: "transfer", target });
    const code = (error as NodeJS.ErrnoException).code;
    throw new TransferError(`${direction} from ${from} to ${to} failed${code ? ` (${code})` : ""}`, { target, cause: error });
  }
  return {};
};

function pick<T, Args extends unknown[]>(
  script: Scripted<T, Args> | undefined,
  fallback: T | undefined,
  label: string,
  args: Args,
): Promise<T> {
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

/** Waits `ms`; rejects with `AbortError` when `signal` aborts first. */
function wait(ms: number | undefined, signal: AbortSignal | undefined, target: Target): Promise<void> {
  if (signal?.aborted) return Promise.reject(new AbortError(undefined, { target }));
  if (!ms) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const onAbort = () => {
      clearTimeout(timer);
      reject(new AbortError(undefined, { target }));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
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
      let outcome = await pick(this.#script("connect", this.#options.connect), {}, `connect(${describe(target)})`, [
        target,
        this.#connectAttempts,
      ] as [Target, number]);
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
    return pick(this.#script("spawn", this.#options.spawn), undefined, `spawn(${JSON.stringify(request.command)})`, [
      request,
      connection,
    ] as [SpawnRequest, FakeConnection]);
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

/** The error running processes get when their connection goes away. */
function lostError(connection: FakeConnection, cause?: unknown, message = "the connection was lost"): TunnelError {
  if (TunnelError.is(cause) && cause.code === "CONNECTION_LOST") return cause;
  return new ConnectError(message, { lost: true, phase: "exec", target: connection.target, cause });
}

export class FakeConnection implements Connection {
  readonly transport: string;
  readonly capabilities: ConnectionCapabilities;
  readonly maxChannels: number;
  readonly #owner: FakeTransport;
  readonly #listeners = new Set<(error?: TunnelError) => void>();
  readonly #running = new Set<FakeProcess>();
  readonly #maxSessions: number;
  #closed = false;
  #refusals = 0;
  #peakChannels = 0;

  constructor(
    owner: FakeTransport,
    /** 1, 2, 3, ... in the order the transport made them. */
    readonly id: number,
    readonly target: Target,
    settings: { readonly maxChannels: number; readonly maxSessions?: number | undefined; readonly capabilities: ConnectionCapabilities },
  ) {
    this.#owner = owner;
    this.transport = owner.name;
    this.maxChannels = settings.maxChannels;
    this.#maxSessions = settings.maxSessions ?? settings.maxChannels;
    this.capabilities = settings.capabilities;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Channels open now (processes spawned and not yet ended). */
  get activeChannels(): number {
    return this.#running.size;
  }

  /** The most channels open at the same time, so far. */
  get peakChannels(): number {
    return this.#peakChannels;
  }

  /** `onClose` listeners registered and not removed (a closed connection has none left). */
  get listenerCount(): number {
    return this.#listeners.size;
  }

  /**
   * Turn `closed` true without telling anyone: no `onClose` listener hears of it, running processes go on. Stands
   * for a transport that missed the loss of its connection.
   */
  closeWithoutNotice(): void {
    this.#closed = true;
  }

  /** The next `count` spawns are refused with `ChannelError({ refused: true })`, as sshd does past MaxSessions. */
  refuseNextSpawns(count = 1): void {
    this.#refusals += count;
  }

  /**
   * Simulate a lost connection: running processes' `exit` rejects with `CONNECTION_LOST` (`error` itself when it
   * has that code), their handlers get `SIGKILL`, and `onClose` listeners get `error` (default: a `CONNECTION_LOST`).
   */
  drop(error?: TunnelError): void {
    if (this.#closed) return;
    const lost = error ?? lostError(this);
    this.#shutDown(lostError(this, lost), lost);
  }

  spawn(request: SpawnRequest): RemoteProcess {
    this.#owner.calls.push({
      type: "spawn",
      target: this.target,
      connection: this.id,
      command: request.command,
      pty: Boolean(request.pty),
    });
    const remote = new FakeProcess(this, request, (signal) =>
      this.#owner.calls.push({ type: "kill", target: this.target, connection: this.id, command: request.command, signal }),
    );
    if (this.#closed) {
      remote.fail(new ConnectError("the connection is closed", { lost: true, phase: "channel", target: this.target }));
    } else if (request.signal?.aborted) {
      remote.fail(new AbortError(undefined, { target: this.target }));
    } else if (this.#refusals > 0 || this.#running.size >= this.#maxSessions) {
      if (this.#refusals > 0) this.#refusals -= 1;
      remote.fail(new ChannelError("the server refused to open a channel", { refused: true, target: this.target }));
    } else {
      this.#running.add(remote);
      this.#peakChannels = Math.max(this.#peakChannels, this.#running.size);
      void remote.exit.then(
        () => this.#running.delete(remote),
        () => this.#running.delete(remote),
      );
      remote.begin(this.#owner.spawnReply(request, this));
    }
    return remote;
  }

  async upload(request: UploadRequest): Promise<void> {
    this.#owner.calls.push({
      type: "upload",
      target: this.target,
      connection: this.id,
      localPath: request.localPath,
      remotePath: request.remotePath,
    });
    await this.#outcome(() => this.#transferReply("upload", request), request.signal);
  }

  async download(request: DownloadRequest): Promise<void> {
    this.#owner.calls.push({
      type: "download",
      target: this.target,
      connection: this.id,
      localPath: request.localPath,
      remotePath: request.remotePath,
    });
    await this.#outcome(() => this.#transferReply("download", request), request.signal);
  }

  /** A connection that declares no transfers refuses them, as a transport must, without asking the script. */
  #transferReply(kind: "upload" | "download", request: UploadRequest | DownloadRequest): Promise<FakeOutcome> {
    if (!this.capabilities.transfer) {
      return Promise.reject(new TransferError(`this connection declares no transfers (capabilities.transfer is false)`, { target: this.target }));
    }
    return this.#owner.transferReply(kind, request, this);
  }

  async ping(options: { readonly signal?: AbortSignal } = {}): Promise<void> {
    this.#owner.calls.push({ type: "ping", target: this.target, connection: this.id });
    await this.#outcome(() => this.#owner.pingReply(this), options.signal);
  }

  async #outcome(reply: () => Promise<FakeOutcome>, signal: AbortSignal | undefined): Promise<void> {
    if (this.#closed) throw new ConnectError("the connection is closed", { lost: true, target: this.target });
    if (signal?.aborted) throw new AbortError(undefined, { target: this.target });
    const outcome = await reply();
    await wait(outcome.delayMs, signal, this.target);
    if (this.#closed) throw new ConnectError("the connection is closed", { lost: true, target: this.target });
    if (outcome.error !== undefined) throw outcome.error;
  }

  async close(): Promise<void> {
    this.#owner.calls.push({ type: "close", target: this.target, connection: this.id });
    if (this.#closed) return;
    this.#shutDown(lostError(this, undefined, "the connection was closed"), undefined);
  }

  onClose(listener: (error?: TunnelError) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  #shutDown(processError: TunnelError, closeError: TunnelError | undefined): void {
    this.#closed = true;
    for (const remote of [...this.#running]) remote.lose(processError);
    this.#running.clear();
    const listeners = [...this.#listeners];
    this.#listeners.clear();
    for (const listener of listeners) {
      try {
        listener(closeError);
      } catch {
        // a listener's failure must not stop the others
      }
    }
  }
}

function normalizeSignal(signal: string): string {
  return signal.startsWith("SIG") ? signal : `SIG${signal}`;
}

/** A settle-once promise with its resolvers; rejections are marked handled (callers may await only one of them). */
function deferred<T>(): { promise: Promise<T>; resolve: (value: T) => void; reject: (error: unknown) => void } {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((ok, fail) => {
    resolve = ok;
    reject = fail;
  });
  promise.catch(() => {});
  return { promise, resolve, reject };
}

class FakeProcess implements RemoteProcess {
  readonly stdin = new PassThrough();
  readonly stdout = new PassThrough();
  readonly stderr = new PassThrough();
  readonly started: Promise<void>;
  readonly exit: Promise<ExitStatus>;
  readonly #started = deferred<void>();
  readonly #exit = deferred<ExitStatus>();
  readonly #killListeners: Array<(signal: string) => void> = [];
  readonly #connection: FakeConnection;
  readonly #request: SpawnRequest;
  readonly #logKill: (signal: string) => void;
  #settled = false;
  /** A handler still writes to the output streams: they end when it finishes, not when `exit` settles. */
  #handlerRunning = false;
  /** Ends a scripted process early (kill during its delay). */
  #interrupt: ((signal: string) => void) | undefined;

  constructor(connection: FakeConnection, request: SpawnRequest, logKill: (signal: string) => void) {
    this.#connection = connection;
    this.#request = request;
    this.#logKill = logKill;
    this.started = this.#started.promise;
    this.exit = this.#exit.promise;
    // A fake must not crash the test process over a stream error nobody listens for.
    for (const stream of [this.stdin, this.stdout, this.stderr]) stream.on("error", () => {});
  }

  /** Never started: both promises reject with `error`. */
  fail(error: unknown): void {
    this.#started.reject(error);
    this.#settle(undefined, error);
  }

  /** The connection went away while this ran. */
  lose(error: TunnelError): void {
    this.#started.reject(error);
    this.#notifyKill("SIGKILL");
    this.#settle(undefined, error);
  }

  kill(signal = "SIGTERM"): Promise<void> {
    const name = normalizeSignal(signal);
    this.#logKill(name);
    if (!this.#settled) {
      this.#notifyKill(name);
      this.#interrupt?.(name);
    }
    return Promise.resolve();
  }

  begin(reply: Promise<SpawnReply>): void {
    const signal = this.#request.signal;
    const onAbort = () => {
      this.#logKill("SIGTERM");
      this.#notifyKill("SIGTERM");
      this.#started.reject(new AbortError(undefined, { target: this.#connection.target }));
      this.#settle(undefined, new AbortError(undefined, { target: this.#connection.target }));
    };
    signal?.addEventListener("abort", onAbort, { once: true });
    void this.exit.then(
      () => signal?.removeEventListener("abort", onAbort),
      () => signal?.removeEventListener("abort", onAbort),
    );
    reply.then(
      (value) => {
        if (this.#settled) return;
        if ("run" in value && typeof value.run === "function") this.#runHandler(value);
        else void this.#runScripted(value as SpawnResult);
      },
      (error: unknown) => this.fail(error),
    );
  }

  #notifyKill(signal: string): void {
    for (const listener of this.#killListeners) {
      try {
        listener(signal);
      } catch {
        // the handler's business
      }
    }
  }

  #settle(status: ExitStatus | undefined, error?: unknown): void {
    if (this.#settled) return;
    this.#settled = true;
    this.#interrupt = undefined;
    if (!this.#handlerRunning) {
      if (!this.stdout.writableEnded) this.stdout.end();
      if (!this.stderr.writableEnded) this.stderr.end();
    }
    if (status) this.#exit.resolve(status);
    else this.#exit.reject(error);
  }

  async #runScripted(result: SpawnResult): Promise<void> {
    if (result.error !== undefined && result.errorAt !== "exit") {
      await this.#sleep(result.delayMs);
      this.fail(result.error);
      return;
    }
    this.#started.resolve();
    const killedBy = await this.#sleep(result.delayMs);
    if (this.#settled) return;
    if (killedBy) {
      this.#settle({ exitCode: null, signal: killedBy });
      return;
    }
    // A real host's /bin/sh prints a prepared command's start token before anything else; so does the fake, so that
    // an Executor over it sees the command start (scripted output stands for what the command itself printed).
    const start = startTokenOf(this.#request.command);
    if (start !== undefined) this.stderr.write(start);
    if (result.stdout !== undefined) this.stdout.write(result.stdout);
    if (result.stderr !== undefined) this.stderr.write(result.stderr);
    if (result.error !== undefined) {
      this.#settle(undefined, result.error);
      return;
    }
    await this.#drained();
    const signal = result.signal ?? null;
    this.#settle({ exitCode: signal ? null : (result.exitCode ?? 0), signal });
  }

  /** Sleeps `ms`; resolves early with the signal when the process is killed meanwhile. */
  #sleep(ms: number | undefined): Promise<string | undefined> {
    if (!ms) return Promise.resolve(undefined);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#interrupt = undefined;
        resolve(undefined);
      }, ms);
      this.#interrupt = (signal) => {
        clearTimeout(timer);
        this.#interrupt = undefined;
        resolve(signal);
      };
      void this.exit.then(
        () => clearTimeout(timer),
        () => clearTimeout(timer),
      );
    });
  }

  #runHandler(handler: SpawnHandler): void {
    this.#started.resolve();
    this.#handlerRunning = true;
    const io: FakeProcessIo = {
      request: this.#request,
      connection: this.#connection,
      stdin: this.stdin,
      stdout: this.stdout,
      stderr: this.stderr,
      onKill: (listener) => this.#killListeners.push(listener),
    };
    let outcome: Promise<ExitStatus>;
    try {
      outcome = Promise.resolve(handler.run(io));
    } catch (error) {
      outcome = Promise.reject(error);
    }
    const finish = () => {
      this.#handlerRunning = false;
      if (!this.stdout.writableEnded) this.stdout.end();
      if (!this.stderr.writableEnded) this.stderr.end();
    };
    outcome.then(
      async (status) => {
        finish();
        await this.#drained();
        this.#settle(status);
      },
      (error: unknown) => {
        finish();
        this.#settle(undefined, error);
      },
    );
  }

  /** Output has been handed to the caller's side of the streams (as a channel closes only once its data is out). */
  async #drained(): Promise<void> {
    const finished = (stream: PassThrough) =>
      new Promise<void>((resolve) => {
        if (stream.writableFinished || stream.destroyed) resolve();
        else {
          if (!stream.writableEnded) stream.end();
          stream.once("finish", resolve);
          stream.once("close", resolve);
        }
      });
    await Promise.race([
      Promise.all([finished(this.stdout), finished(this.stderr)]),
      this.exit.then(
        () => {},
        () => {},
      ),
    ]);
  }
}

/**
 * The start token a command prepared by core prints first (`[tunnel-start-<nonce>]`), if `command` is one. The
 * login-shell line carries the script octal-encoded for printf, so the escapes are read back before looking.
 */
function startTokenOf(command: string): string | undefined {
  const decoded = command.replace(/\\([0-7]{3})/g, (_match, octal: string) => String.fromCharCode(Number.parseInt(octal, 8)));
  return /\[tunnel-start-[A-Za-z0-9]+\]/.exec(decoded)?.[0];
}
