import { EventEmitter } from "node:events";
import { Duplex, PassThrough } from "node:stream";
import { loginShellCommand } from "@tunnel-sh/core";
import { SESSION_GROUP_PROBE } from "@tunnel-sh/core/internal";
import type { Client, ConnectConfig } from "ssh2";

/** The probe ends its stdin before the channel opens, so its line reads /dev/null (no EOF packet). */
const PROBE_LINE = `${loginShellCommand(SESSION_GROUP_PROBE)} </dev/null`;

/** A stand-in for an ssh2 session channel: stdout is the duplex itself, stderr a readable beside it. */
export class FakeChannel extends Duplex {
  readonly stderr = new PassThrough();
  readonly outgoing = { state: "open", id: 0 };
  readonly signals: string[] = [];
  readonly written: Buffer[] = [];
  eofSent = false;

  override _read(): void {}
  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: () => void): void {
    this.written.push(chunk);
    callback();
  }
  eof(): void {
    this.eofSent = true;
    this.outgoing.state = "eof";
  }
  signal(name: string): void {
    this.signals.push(name);
  }
  close(): void {
    this.outgoing.state = "closed";
  }
  /** What the server would do when the process ends. */
  finish(code: number | null, signal?: string): void {
    this.emit("exit", code, signal);
    this.push(null);
    this.stderr.end();
    this.once("end", () => this.emit("close", code, signal));
  }
}

type ExecCallback = (error: Error | undefined, channel: FakeChannel) => void;

/** A scripted ssh2 `Client`: records connect configs and exec calls, and lets the test drive events. */
export class FakeClient extends EventEmitter {
  config: ConnectConfig | undefined;
  readonly execs: Array<{ command: string; options: unknown; callback: ExecCallback }> = [];
  connected = false;
  onConnect: (client: FakeClient) => void = (client) => queueMicrotask(() => client.emit("ready"));
  /**
   * How the fake server answers the transport's session-group probe at connect, the way OpenSSH (`group`) or
   * dropbear (`pid`) would; an `Error` refuses the probe's channel. Probes are answered here and not recorded in `execs`.
   */
  sessionGroup: "group" | "pid" | Error = "group";
  readonly probes: string[] = [];

  connect(config: ConnectConfig): this {
    this.config = config;
    this.connected = true;
    this.onConnect(this);
    return this;
  }
  exec(command: string, options: unknown, callback?: ExecCallback): this {
    if (!this.connected) throw new Error("Not connected");
    const cb = (typeof options === "function" ? options : callback) as ExecCallback;
    if (command === PROBE_LINE) {
      this.probes.push(command);
      const answer = this.sessionGroup;
      queueMicrotask(() => {
        const channel = new FakeChannel();
        if (answer instanceof Error) return cb(answer, channel);
        cb(undefined, channel);
        channel.push(`${answer}\n`);
        channel.finish(0);
      });
      return this;
    }
    this.execs.push({ command, options: typeof options === "function" ? undefined : options, callback: cb });
    return this;
  }
  /** Answer the oldest unanswered exec with a channel (or an error), once the connection sent it (a tick after spawn). */
  async open(error?: Error): Promise<FakeChannel> {
    if (this.execs.length === 0) await new Promise((resolve) => process.nextTick(resolve));
    const exec = this.execs.shift();
    if (!exec) throw new Error("no pending exec");
    const channel = new FakeChannel();
    exec.callback(error, channel);
    return channel;
  }
  end(): this {
    this.drop();
    return this;
  }
  destroy(): this {
    this.drop();
    return this;
  }
  setNoDelay(): this {
    return this;
  }
  /** The socket went away: ssh2 emits end and close, no error. */
  drop(): void {
    if (!this.connected) return;
    this.connected = false;
    queueMicrotask(() => {
      this.emit("end");
      this.emit("close");
    });
  }
  asClient(): Client {
    return this as unknown as Client;
  }
}
