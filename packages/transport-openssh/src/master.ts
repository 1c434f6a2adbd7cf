/**
 * One ControlMaster process: `ssh -M -N` in the foreground, its control socket in a private 0700 folder.
 *
 * Masters still running when the Node process exits are killed synchronously from a single `process.on("exit")`
 * hook. That hook and the `Set` of live masters it walks are the only module-level state of this package: the set
 * holds a master from spawn until its process has exited, so it never grows beyond the masters really running.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { chmodSync, rmSync, watch, type FSWatcher } from "node:fs";
import { mkdtemp, rm, stat, writeFile } from "node:fs/promises";
import { connect as connectSocket, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AbortError, loginShellCommand, type Target, type TunnelError } from "@tunnel-sh/core";
import { deadlineSignal, exitWaiterScript, type DeadlineSignal } from "@tunnel-sh/core/internal";
import { startAskpassBridge, type AskpassBridge } from "./askpass-bridge.js";
import { sshEnvironment } from "./environment.js";
import { MasterSession } from "./master-session.js";
import { normalizeSshError } from "./normalize-error.js";
import { masterArgs, type ResolvedOptions } from "./options.js";
import { runSsh } from "./run-ssh.js";
import { newNonce } from "./wrapper.js";

interface LiveMaster {
  readonly child: ChildProcess;
  readonly dir: string;
}

const liveMasters = new Set<LiveMaster>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on("exit", () => {
    for (const master of liveMasters) {
      try {
        master.child.kill("SIGTERM");
      } catch {
        // already gone
      }
      try {
        rmSync(master.dir, { recursive: true, force: true });
      } catch {
        // best effort at exit
      }
    }
  });
}

/** Keeps the tail of a stream's text, so a chatty process cannot grow memory. */
export class TailBuffer {
  private text = "";
  constructor(private readonly limit = 16 * 1024) {}
  append(chunk: Buffer | string): void {
    this.text += chunk.toString();
    if (this.text.length > this.limit) this.text = this.text.slice(-this.limit);
  }
  toString(): string {
    return this.text;
  }
}

/** How long a connect waits for its master's session to name the server (it does as the session starts). */
const SERVER_REPORT_MS = 5_000;

/** The socket name is short on purpose: ssh binds `<path>.<16 random chars>` first, and sun_path holds ~104 bytes. */
const SOCKET_NAME = "s";

export class Master {
  readonly socketPath: string;
  private child: ChildProcess | undefined;
  private readonly stderr = new TailBuffer();
  private exitCode: number | null | undefined;
  private exitSignal: NodeJS.Signals | null = null;
  private readonly exited: Promise<void>;
  private resolveExited!: () => void;
  private live: LiveMaster | undefined;
  private onExitListener: ((error: TunnelError | undefined) => void) | undefined;
  private stopping = false;
  /** The master's own session, ready for the connection's first command (`master-session.ts`). */
  session: MasterSession | undefined;
  /** A connection to the control socket that keeps the master running once its own session has closed. */
  private hold: Socket | undefined;

  private constructor(
    readonly dir: string,
    private readonly options: ResolvedOptions,
    private readonly target: Target,
  ) {
    this.socketPath = join(dir, SOCKET_NAME);
    this.exited = new Promise((resolve) => (this.resolveExited = resolve));
  }

  /** Start a master and wait until its control socket is in place. Rejects with a typed error and leaves nothing behind. */
  static async start(options: ResolvedOptions, target: Target, signal: AbortSignal | undefined): Promise<Master> {
    signal?.throwIfAborted();
    const base = options.tempDir ?? tmpdir();
    let dir = await mkdtemp(join(base, "tunnel-ssh-"));
    if (Buffer.byteLength(join(dir, SOCKET_NAME)) > 80 && base !== "/tmp") {
      await rm(dir, { recursive: true, force: true });
      dir = await mkdtemp(join("/tmp", "tunnel-ssh-"));
    }
    chmodSync(dir, 0o700);
    const master = new Master(dir, options, target);
    try {
      await master.launch(signal);
      return master;
    } catch (error) {
      await master.stop();
      throw error;
    }
  }

  get alive(): boolean {
    return this.exitCode === undefined && !this.stopping;
  }

  /** Called once when the master process exits; `error` is set unless `stop()` was asked for. */
  onExit(listener: (error: TunnelError | undefined) => void): void {
    this.onExitListener = listener;
  }

  /** Resolves when the master process has exited, or after `ms`. True when it has exited. */
  async waitExit(ms: number): Promise<boolean> {
    if (this.exitCode !== undefined) return true;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
    const result = await Promise.race([this.exited.then(() => true as const), timeout]);
    clearTimeout(timer);
    return result;
  }

  /** `ssh -O check`: does the master answer on its socket? */
  async check(signal?: AbortSignal): Promise<boolean> {
    if (this.exitCode !== undefined) return false;
    const result = await runSsh(this.options, ["-S", this.socketPath.replace(/%/g, "%%"), "-O", "check", "--", this.target.host], {
      timeoutMs: 5_000,
      ...(signal ? { signal } : {}),
    });
    return result.code === 0;
  }

  /** The error that explains the master's exit, from what it printed. */
  exitError(): TunnelError {
    return normalizeSshError({ phase: "lost", stderr: this.stderr.toString(), exitCode: this.exitCode ?? null, target: this.target });
  }

  private async launch(signal: AbortSignal | undefined): Promise<void> {
    const env: Record<string, string | undefined> = sshEnvironment(this.options.env);
    // ssh runs a ProxyCommand with $SHELL -c; the jump command is quoted for sh.
    if (this.options.proxyJump !== undefined && this.options.proxyJump.length > 0) env.SHELL = "/bin/sh";
    let passwordFile: string | undefined;
    let bridge: AskpassBridge | undefined;
    // The prompts' signal: the caller's, or the connect's time running out. Disposed once the master is up or has
    // failed, so no timer outlives the connect.
    let prompts: DeadlineSignal | undefined;
    if (this.options.onKeyboardInteractive !== undefined) {
      prompts = deadlineSignal({
        signal,
        timeoutMs: this.options.readyTimeout,
        abortReason: (): unknown => signal?.reason,
        timeoutReason: () => new DOMException("The connect timed out.", "TimeoutError"),
      });
      bridge = await startAskpassBridge({
        dir: this.dir,
        target: this.target,
        password: this.options.password,
        onKeyboardInteractive: this.options.onKeyboardInteractive,
        signal: prompts.signal,
      }).catch((error: unknown) => {
        prompts?.dispose();
        throw error;
      });
      Object.assign(env, bridge.env);
    } else if (this.options.password !== undefined) {
      // The helper answers only password prompts (not passphrases or host key questions); the secret sits in a
      // 0600 file inside the 0700 folder and is removed as soon as the master is up or has failed.
      passwordFile = join(this.dir, "password");
      const helper = join(this.dir, "askpass");
      await writeFile(passwordFile, this.options.password, { mode: 0o600, flag: "wx" });
      await writeFile(helper, `#!/bin/sh\ncase "$1" in\n  *assword*) exec cat ${shellPath(passwordFile)} ;;\n  *) exit 1 ;;\nesac\n`, {
        mode: 0o700,
        flag: "wx",
      });
      env.SSH_ASKPASS = helper;
      env.SSH_ASKPASS_REQUIRE = "force";
      env.DISPLAY = env.DISPLAY ?? "tunnel:0";
    }
    try {
      // The master carries the first command in a session of its own, except where that session would be the
      // connection's only one (a pty or a transfer could then never run beside it) or the status need not be exact.
      const nonce = this.options.exactExitStatus && this.options.maxChannels >= 2 ? newNonce() : undefined;
      const args = [...masterArgs(this.options, this.target, this.socketPath, nonce !== undefined), "--", this.target.host];
      if (nonce !== undefined) {
        const waiter = exitWaiterScript("", nonce, {
          framed: true,
          commandFromStdin: true,
          relayStderr: true,
          requirePerl: true,
          reportServer: true,
        });
        args.push(loginShellCommand(waiter));
      }
      // A process group of its own: a Ctrl-C on the user's terminal goes to the application, which then stops the
      // remote processes through this master, instead of killing the master first (see the README's cancellation).
      const stdio = nonce !== undefined ? (["pipe", "pipe", "pipe"] as const) : (["ignore", "ignore", "pipe"] as const);
      const child = spawn(this.options.sshPath, args, { stdio: [...stdio], env, detached: true });
      this.child = child;
      this.live = { child, dir: this.dir };
      liveMasters.add(this.live);
      installExitHook();
      if (nonce !== undefined) this.session = new MasterSession(child, nonce, (chunk) => this.stderr.append(chunk));
      else child.stderr?.on("data", (chunk: Buffer) => this.stderr.append(chunk));
      let spawnError: Error | undefined;
      child.on("error", (error) => {
        spawnError = error;
        this.stderr.append(`ssh: ${error.message}\n`);
      });
      child.on("close", (code, exitSignal) => {
        this.exitCode = spawnError ? 255 : code;
        this.exitSignal = exitSignal;
        if (this.live) liveMasters.delete(this.live);
        this.resolveExited();
        const listener = this.onExitListener;
        this.onExitListener = undefined;
        listener?.(this.stopping ? undefined : this.exitError());
      });
      await this.waitReady(signal);
      if (this.session) await this.holdOpen();
      // The session's first report names the server's software (dropbear takes short exec lines only); it comes
      // as the session starts, before the ready report the first command waits for anyway.
      await this.session?.serverKnown(SERVER_REPORT_MS);
    } finally {
      prompts?.dispose();
      if (passwordFile) await rm(passwordFile, { force: true });
      await bridge?.close();
    }
  }

  /**
   * Ready once the control socket exists: ssh listens on `<path>.<random>` and only then links it to `<path>`, after
   * authentication, so the socket's name alone proves the master accepts clients — no `-O check` process is needed.
   * A watch on the private folder wakes the wait as soon as the link appears; the polling is the fallback.
   */
  private async waitReady(signal: AbortSignal | undefined): Promise<void> {
    const deadline = Date.now() + this.options.readyTimeout;
    let delay = 5;
    let wake: (() => void) | undefined;
    let watcher: FSWatcher | undefined;
    try {
      watcher = watch(this.dir, () => wake?.());
      watcher.on("error", () => undefined);
    } catch {
      // no watch on this file system: polling alone
    }
    const onAbort = () => wake?.();
    signal?.addEventListener("abort", onAbort, { once: true });
    try {
      for (;;) {
        if (signal?.aborted) throw new AbortError("the connect was aborted", { phase: "connect", target: this.target });
        if (this.exitCode !== undefined) {
          throw normalizeSshError({ phase: "connect", stderr: this.stderr.toString(), exitCode: this.exitCode, target: this.target });
        }
        if (await this.socketReady()) return;
        if (Date.now() > deadline) {
          throw normalizeSshError({
            phase: "connect",
            stderr: `${this.stderr.toString()}\nthe connection was not ready within ${this.options.readyTimeout} ms (timed out)`,
            exitCode: null,
            target: this.target,
          });
        }
        let timer: NodeJS.Timeout | undefined;
        const woken = new Promise<void>((resolve) => {
          wake = resolve;
          timer = setTimeout(resolve, delay);
        });
        await Promise.race([woken, this.exited]);
        clearTimeout(timer);
        wake = undefined;
        delay = Math.min(delay * 2, 50);
      }
    } finally {
      signal?.removeEventListener("abort", onAbort);
      watcher?.close();
    }
  }

  /**
   * Connect to the control socket and stay connected: a master without ControlPersist exits once its own session has
   * closed and no client is connected, so this keeps it serving the connection. The master's hello proves it has
   * taken the connection on. Without it the session is not used (the master would end with the first command).
   */
  private async holdOpen(): Promise<void> {
    const hold = connectSocket(this.socketPath);
    this.hold = hold;
    const held = await new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), 5_000);
      hold.once("data", () => {
        clearTimeout(timer);
        resolve(true);
      });
      hold.once("error", () => {
        clearTimeout(timer);
        resolve(false);
      });
      hold.once("close", () => resolve(false));
    });
    hold.on("error", () => undefined);
    // The master never sends more unasked; keep reading so nothing piles up.
    hold.resume();
    hold.unref();
    // Untaken, the session stays open (its waiter waits for a command) and keeps the master running instead.
    if (!held) this.session = undefined;
  }

  private async socketReady(): Promise<boolean> {
    return stat(this.socketPath).then(
      (info) => info.isSocket(),
      () => false,
    );
  }

  /**
   * Stop the master: SIGTERM to the process this connection owns (ssh ends its sessions, removes the socket and
   * exits, as `-O exit` would have it do, without a process to ask), SIGKILL if it lingers; await its exit and remove
   * the folder. Never rejects.
   */
  async stop(): Promise<void> {
    this.stopping = true;
    this.hold?.destroy();
    const child = this.child;
    if (child && this.exitCode === undefined) {
      child.kill("SIGTERM");
      if (!(await this.waitExit(2_000))) {
        child.kill("SIGKILL");
        await this.exited;
      }
    }
    if (this.live) liveMasters.delete(this.live);
    await rm(this.dir, { recursive: true, force: true }).catch(() => undefined);
  }

  /** For tests and diagnostics. */
  get pid(): number | undefined {
    return this.child?.pid;
  }

  get lastSignal(): NodeJS.Signals | null {
    return this.exitSignal;
  }
}

function shellPath(value: string): string {
  return `'${value.replace(/'/g, `'\\''`)}'`;
}
