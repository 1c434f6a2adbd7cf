/**
 * A small in-memory Transport for the pool's tests: scripted connect outcomes (immediate, delayed, failing,
 * held until the test settles them), scripted pings, connections the test can drop, a server-side
 * MaxSessions that refuses channels, and counters of what was open at once.
 */
import { PassThrough } from "node:stream";
import { AbortError, ChannelError, ConnectError } from "@tunnel-sh/core";
import type {
  Connection,
  ConnectionCapabilities,
  ConnectOptions,
  ExitStatus,
  RemoteProcess,
  Span,
  SpawnRequest,
  Target,
  Transport,
  TunnelError,
} from "@tunnel-sh/core";

export type ConnectOutcome =
  | { readonly kind: "ok"; readonly delayMs?: number; readonly maxChannels?: number }
  | { readonly kind: "fail"; readonly error: unknown; readonly delayMs?: number }
  | { readonly kind: "hold" };

export type PingOutcome = "ok" | "fail" | "hang";

export interface HeldConnect {
  readonly target: Target;
  resolve(options?: { maxChannels?: number }): void;
  reject(error: unknown): void;
}

export class FakeTransport implements Transport {
  readonly name = "fake";
  /** Outcomes of the next connects, in order; when empty, connects succeed on the next tick. */
  readonly script: ConnectOutcome[] = [];
  readonly calls: { readonly target: Target; readonly signal: AbortSignal | undefined; readonly span: Span | undefined }[] = [];
  readonly connections: FakeConnection[] = [];
  readonly held: HeldConnect[] = [];
  /** `maxChannels` of new connections. */
  maxChannels = 10;
  /** Channels the "server" accepts at once per connection; more are refused like sshd's MaxSessions. */
  serverMaxSessions = Infinity;
  /** How long a spawned command runs, in ms. */
  commandMs = 1;
  identityOf: ((target: Target) => string) | undefined;
  connecting = 0;
  /** The most connections open or being opened at the same time. */
  peak = 0;

  identity(target: Target): string {
    return this.identityOf?.(target) ?? "";
  }

  /** Connections not closed yet. */
  get open(): FakeConnection[] {
    return this.connections.filter((connection) => !connection.closed);
  }

  connect(target: Target, options: ConnectOptions = {}): Promise<Connection> {
    this.calls.push({ target, signal: options.signal, span: options.span });
    const outcome = this.script.shift() ?? { kind: "ok" };
    this.connecting += 1;
    this.notePeak();
    return new Promise<Connection>((resolve, reject) => {
      let done = false;
      let timer: ReturnType<typeof setTimeout> | undefined;
      const settle = (error: unknown, maxChannels?: number): void => {
        if (done) return;
        done = true;
        this.connecting -= 1;
        if (timer) clearTimeout(timer);
        options.signal?.removeEventListener("abort", onAbort);
        if (error !== undefined) return reject(error);
        const connection = new FakeConnection(this, target, maxChannels ?? this.maxChannels);
        this.connections.push(connection);
        this.notePeak();
        resolve(connection);
      };
      const onAbort = (): void => settle(new AbortError("connect aborted", { target, phase: "connect" }));
      if (options.signal?.aborted) return onAbort();
      options.signal?.addEventListener("abort", onAbort, { once: true });
      if (outcome.kind === "hold") {
        this.held.push({ target, resolve: (held) => settle(undefined, held?.maxChannels), reject: (error) => settle(error) });
        return;
      }
      const run = (): void => (outcome.kind === "ok" ? settle(undefined, outcome.maxChannels) : settle(outcome.error));
      if (outcome.delayMs) timer = setTimeout(run, outcome.delayMs);
      else queueMicrotask(run);
    });
  }

  private notePeak(): void {
    this.peak = Math.max(this.peak, this.open.length + this.connecting);
  }
}

export class FakeConnection implements Connection {
  readonly transport = "fake";
  readonly capabilities: ConnectionCapabilities = { pty: false, signals: false, transfer: false };
  closed = false;
  closeCalls = 0;
  pings = 0;
  /** Outcomes of the next pings; when empty, pings succeed. */
  readonly pingScript: PingOutcome[] = [];
  openChannels = 0;
  peakChannels = 0;
  refusedChannels = 0;
  private readonly listeners = new Set<(error?: TunnelError) => void>();

  constructor(
    private readonly owner: FakeTransport,
    readonly target: Target,
    readonly maxChannels: number,
  ) {}

  spawn(request: SpawnRequest): RemoteProcess {
    const stdout = new PassThrough();
    const stderr = new PassThrough();
    const stdin = new PassThrough();
    stdin.resume();
    let resolveStarted!: () => void;
    let rejectStarted!: (error: unknown) => void;
    const started = new Promise<void>((resolve, reject) => {
      resolveStarted = resolve;
      rejectStarted = reject;
    });
    let resolveExit!: (status: ExitStatus) => void;
    let rejectExit!: (error: unknown) => void;
    const exit = new Promise<ExitStatus>((resolve, reject) => {
      resolveExit = resolve;
      rejectExit = reject;
    });
    // Callers may only await `started`; keep the other promise from being reported as unhandled.
    exit.catch(() => {});
    started.catch(() => {});
    queueMicrotask(() => {
      if (this.closed) {
        const error = new ConnectError("connection lost", { lost: true, target: this.target });
        rejectStarted(error);
        rejectExit(error);
        return;
      }
      if (this.openChannels >= this.owner.serverMaxSessions) {
        this.refusedChannels += 1;
        const error = new ChannelError("(SSH) Channel open failure: open failed", { refused: true, target: this.target });
        rejectStarted(error);
        rejectExit(error);
        return;
      }
      this.openChannels += 1;
      this.peakChannels = Math.max(this.peakChannels, this.openChannels);
      resolveStarted();
      setTimeout(() => {
        this.openChannels -= 1;
        stdout.end(request.command.includes("echo ok") ? "ok\n" : "");
        stderr.end();
        resolveExit({ exitCode: 0, signal: null });
      }, this.owner.commandMs);
    });
    return { stdin, stdout, stderr, started, exit, kill: async () => {} };
  }

  upload(): Promise<void> {
    return Promise.reject(new Error("the fake transport does not transfer files"));
  }

  download(): Promise<void> {
    return Promise.reject(new Error("the fake transport does not transfer files"));
  }

  ping(options: { readonly signal?: AbortSignal } = {}): Promise<void> {
    this.pings += 1;
    const outcome = this.pingScript.shift() ?? "ok";
    if (outcome === "ok") return Promise.resolve();
    if (outcome === "fail") return Promise.reject(new ConnectError("ping failed", { lost: true, target: this.target }));
    return new Promise((_resolve, reject) => {
      options.signal?.addEventListener("abort", () => reject(new AbortError("ping aborted")), { once: true });
    });
  }

  close(): Promise<void> {
    this.closeCalls += 1;
    if (!this.closed) this.emitClose(undefined);
    return Promise.resolve();
  }

  /** The connection is lost from the far side: `closed` turns true and listeners hear `error`. */
  drop(error: TunnelError = new ConnectError("connection lost", { lost: true, target: this.target })): void {
    if (!this.closed) this.emitClose(error);
  }

  onClose(listener: (error?: TunnelError) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  get listenerCount(): number {
    return this.listeners.size;
  }

  private emitClose(error: TunnelError | undefined): void {
    this.closed = true;
    for (const listener of [...this.listeners]) listener(error);
    this.listeners.clear();
  }
}
