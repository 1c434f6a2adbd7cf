/**
 * A process on a `FakeConnection`: a scripted result (start, wait, print, exit) or a handler driving live streams,
 * with kills, aborts and lost connections settling it exactly once, as a real channel does.
 */
import { PassThrough } from "node:stream";
import { AbortError, type ExitStatus, type RemoteProcess, type SpawnRequest, type TunnelError } from "@tunnel-sh/core";
import type { FakeConnection } from "./fake-connection.js";
import type { FakeProcessIo, SpawnHandler, SpawnReply, SpawnResult } from "./fake-transport.js";

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

export class FakeProcess implements RemoteProcess {
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
