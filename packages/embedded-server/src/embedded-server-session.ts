/**
 * One session channel of the embedded test server: env, pty, signal, exec and shell requests, and the process that
 * runs the command.
 *
 * Each command gets a small "session process" (Perl, or Node where Perl is missing), the server-side process of the
 * session (like the sshd child that serves a connection). It runs the command in `/bin/sh -c` as the leader of a new
 * session and process group, and reports the command's pid and its exact wait status on fd 3, so that a death by
 * signal is told apart from an exit code. The session process is titled `sshd: USER@notty`, as OpenSSH titles its per-connection child, so that
 * tools that look for that process among a command's ancestors find it. Killing it drops the whole connection, as
 * killing sshd's child does. With a pty the command runs under util-linux `script`, which gives it a real terminal.
 */
import { spawn, type ChildProcessByStdio } from "node:child_process";
import { constants } from "node:os";
import type { Readable, Writable } from "node:stream";
import type { AcceptConnection, ServerChannel, Session, SFTPWrapper } from "ssh2";

// Arguments: title, mode (exec | shell | pty-exec | pty-shell), command, rows, cols.
// Reports on fd 3: "pid N" (from the command's own process, once it leads its group), then "exit N" or "signal N".
const SESSION_SCRIPT = String.raw`
use strict;
use POSIX ();
my ($title, $mode, $command, $rows, $cols) = @ARGV;
$0 = $title;
open(my $report, '>&=', 3) or die "no report descriptor: $!";
select((select($report), $| = 1)[0]);
my $pid = fork();
die "fork failed: $!" unless defined $pid;
if ($pid == 0) {
  POSIX::setsid();
  print $report "pid $$\n";
  close($report);
  my $size = "stty rows $rows cols $cols 2>/dev/null";
  if ($mode eq 'pty-exec') { exec('script', '-qfec', "$size; $command", '/dev/null'); }
  elsif ($mode eq 'pty-shell') { exec('script', '-qfec', "$size; exec /bin/sh -i", '/dev/null'); }
  elsif ($mode eq 'shell') { exec('/bin/sh'); }
  else { exec('/bin/sh', '-c', $command); }
  print STDERR "cannot run /bin/sh: $!\n";
  POSIX::_exit(127);
}
close(STDIN);
close(STDOUT);
close(STDERR);
waitpid($pid, 0);
my $status = $?;
if ($status & 127) { print $report "signal ", ($status & 127), "\n"; } else { print $report "exit ", ($status >> 8), "\n"; }
POSIX::_exit(0);
`;

// The same in Node, for machines without Perl: slower to start (~50 ms) and larger, but it needs nothing else.
// Arguments: the same, then the command's environment as JSON (the helper itself runs with a minimal one).
const NODE_SESSION_SCRIPT = String.raw`
const { spawn } = require("node:child_process");
const { writeSync } = require("node:fs");
const { constants } = require("node:os");
const [title, mode, command, rows, cols, env] = process.argv.slice(1);
process.title = title;
const report = (line) => writeSync(3, line + "\n");
const size = "stty rows " + rows + " cols " + cols + " 2>/dev/null";
const [file, args] =
  mode === "pty-exec" ? ["script", ["-qfec", size + "; " + command, "/dev/null"]]
  : mode === "pty-shell" ? ["script", ["-qfec", size + "; exec /bin/sh -i", "/dev/null"]]
  : mode === "shell" ? ["/bin/sh", []]
  : ["/bin/sh", ["-c", command]];
// The command's own shell reports its pid before it runs the command, so the report always comes before any output
// (a report sent from here, after the spawn, could come late, and a client that saw output could kill this process
// before the server knew which group to hang up).
const child = spawn("/bin/sh", ["-c", 'echo "pid $$" >&3; exec 3>&-; exec "$0" "$@"', file, ...args], {
  stdio: ["inherit", "inherit", "inherit", 3],
  detached: true,
  env: JSON.parse(env),
});
child.on("error", (error) => {
  process.stderr.write("cannot run " + file + ": " + error.message + "\n");
  report("exit 127");
  process.exit(0);
});
child.on("exit", (code, signal) => {
  report(signal ? "signal " + constants.signals[signal] : "exit " + code);
  process.exit(0);
});
`;

/** The program that serves each session: Perl (fast to start) or Node (always there). */
export type SessionHelper = "perl" | "node";

const signalNames = new Map<number, string>(Object.entries(constants.signals).map(([name, number]) => [number, name]));
/** The signals RFC 4254 names (and ssh2 can send in `exit-signal`), without "SIG". */
const WIRE_SIGNALS = new Set(["ABRT", "ALRM", "FPE", "HUP", "ILL", "INT", "QUIT", "SEGV", "TERM", "USR1", "USR2", "KILL", "PIPE"]);
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** After a hang-up, how long a command may take to exit before it is killed. */
const HANGUP_GRACE_MS = 2_000;

type Status = { readonly exitCode: number } | { readonly signal: number };

/** What a session needs from its connection and server. */
export interface SessionContext {
  /** The SSH user name (for the process title). */
  readonly user: string;
  /** The environment every command starts with (env requests are added to it). */
  readonly env: Readonly<Record<string, string>>;
  readonly cwd: string;
  readonly acceptEnv: (name: string) => boolean;
  readonly helper: SessionHelper;
  /** Whether a pty can be given (util-linux `script` is installed). */
  readonly ptyAvailable: boolean;
  /** A command started (the server kills it on `close()`; its connection hangs it up when it drops). */
  readonly track: (command: SessionProcess) => void;
  /** A command ended: its session process exited and its pipes closed. */
  readonly untrack: (command: SessionProcess) => void;
  /** The session process was killed: drop the connection, as sshd's does when its child dies. */
  readonly serverProcessKilled: (signal: string) => void;
  /** Serve the SFTP subsystem on this session. */
  readonly serveSftp: (accept: () => SFTPWrapper) => void;
}

interface PtySettings {
  term: string;
  rows: number;
  cols: number;
}

type SessionChild = ChildProcessByStdio<Writable, Readable, Readable>;

/** A running command: its session process and, once reported, the process group it leads. */
export class SessionProcess {
  group: number | undefined;
  status: Status | undefined;
  /** The session process exited and its pipes closed: only `killNow()` still signals the group. */
  #finished = false;
  readonly #pendingSignals: NodeJS.Signals[] = [];
  #hangupTimer: NodeJS.Timeout | undefined;
  readonly exited: Promise<void>;

  constructor(readonly child: SessionChild) {
    this.exited = new Promise((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) resolve();
      else child.once("exit", () => resolve());
    });
  }

  /** The command's process group is known (signals waiting for it are sent now). */
  started(group: number): void {
    this.group = group;
    for (const signal of this.#pendingSignals.splice(0)) this.signal(signal);
  }

  /** Signal the command's process group (not the session process). */
  signal(signal: NodeJS.Signals): void {
    if (this.group === undefined) {
      if (this.status === undefined) this.#pendingSignals.push(signal);
      return;
    }
    try {
      process.kill(-this.group, signal);
    } catch {
      // the group is gone already
    }
  }

  /** The client went away: hang up the command, and kill it if it does not exit soon. */
  hangUp(): void {
    if (this.#finished) return;
    this.signal("SIGHUP");
    if (this.#hangupTimer) return;
    this.#hangupTimer = setTimeout(() => this.signal("SIGKILL"), HANGUP_GRACE_MS);
    this.#hangupTimer.unref();
  }

  /** Kill the command's group and the session process at once, and let go of the pipes. */
  killNow(): void {
    this.signal("SIGKILL");
    this.child.kill("SIGKILL");
    for (const stream of [this.child.stdin, this.child.stdout, this.child.stderr, this.child.stdio[3] as Readable | null]) {
      stream?.destroy();
    }
    this.done();
  }

  done(): void {
    this.#finished = true;
    clearTimeout(this.#hangupTimer);
    this.#hangupTimer = undefined;
  }
}

/** Serve one session channel. */
export function serveSession(session: Session, context: SessionContext): void {
  const env: Record<string, string> = { ...context.env };
  let pty: PtySettings | undefined;
  let running: SessionProcess | undefined;
  let closed = false;

  session.on("env", (accept, reject, info) => {
    if (ENV_NAME.test(info.key) && context.acceptEnv(info.key)) {
      env[info.key] = info.val;
      accept?.();
    } else reject?.();
  });
  session.on("pty", (accept, reject, info) => {
    if (!context.ptyAvailable) {
      reject?.();
      return;
    }
    const whole = (value: number, fallback: number) => (Number.isInteger(value) && value > 0 ? value : fallback);
    pty = { term: info.term || "xterm", rows: whole(info.rows, 24), cols: whole(info.cols, 80) };
    accept?.();
  });
  // Accepted but without effect: the terminal keeps the size it started with.
  session.on("window-change", (accept) => accept?.());
  session.on("signal", (accept, reject, info) => {
    const name = `SIG${String(info.name).toUpperCase().replace(/^SIG/, "")}`;
    if (!running || !(name in constants.signals)) {
      reject?.();
      return;
    }
    running.signal(name as NodeJS.Signals);
    accept?.();
  });
  session.on("exec", (accept, _reject, info) => {
    running = start(accept, info.command);
  });
  session.on("shell", (accept) => {
    running = start(accept, undefined);
  });
  session.on("sftp", (accept) => context.serveSftp(accept));
  session.on("subsystem", (_accept, reject) => reject());
  session.on("x11", (_accept, reject) => reject?.());
  session.on("auth-agent", (_accept, reject) => reject?.());
  // ssh2 refuses every request on a session once the client sent EOF, signals included; OpenSSH's sshd honours
  // signals until the channel closes (a client ends stdin, then cancels), so the session is kept open to them.
  session.on("eof", () => {
    const internals = session as unknown as { _ending?: boolean; _channel?: unknown };
    if (internals._channel !== undefined && !closed) internals._ending = false;
  });
  session.on("close", () => {
    closed = true;
    running?.hangUp();
  });

  function start(accept: AcceptConnection<ServerChannel>, command: string | undefined): SessionProcess | undefined {
    const channel = accept();
    if (!channel) return undefined;
    repairWindowRetries(channel);
    channel.on("error", () => {
      // a channel error ends in `close`, handled below
    });
    const title = `sshd: ${context.user.replace(/[\s[]/g, "_")}@notty`;
    const mode = `${pty ? "pty-" : ""}${command === undefined ? "shell" : "exec"}`;
    const childEnv = pty ? { ...env, TERM: pty.term } : env;
    const args = [title, mode, command ?? "", String(pty?.rows ?? 0), String(pty?.cols ?? 0)];
    const child =
      context.helper === "perl"
        ? spawn("perl", ["-e", SESSION_SCRIPT, "--", ...args], {
            stdio: ["pipe", "pipe", "pipe", "pipe"],
            env: childEnv,
            cwd: context.cwd,
          })
        : spawn(process.execPath, ["-e", NODE_SESSION_SCRIPT, "--", ...args, JSON.stringify(childEnv)], {
            stdio: ["pipe", "pipe", "pipe", "pipe"],
            env: { PATH: childEnv["PATH"] ?? "/usr/bin:/bin" },
            cwd: context.cwd,
          });
    const sessionProcess = new SessionProcess(child);
    context.track(sessionProcess);

    const report = child.stdio[3] as Readable;
    let reported = "";
    report.on("data", (chunk: Buffer) => {
      reported += chunk.toString("latin1");
      const pid = /^pid (\d+)$/m.exec(reported);
      if (pid && sessionProcess.group === undefined) sessionProcess.started(Number(pid[1]));
      const exit = /^exit (\d+)$/m.exec(reported);
      const signal = /^signal (\d+)$/m.exec(reported);
      if (exit) sessionProcess.status = { exitCode: Number(exit[1]) };
      else if (signal) sessionProcess.status = { signal: Number(signal[1]) };
    });
    report.on("error", () => {});

    channel.pipe(child.stdin);
    child.stdin.on("error", () => {
      // the command may exit without reading its stdin
    });
    child.stdout.pipe(channel, { end: false });
    child.stderr.pipe(channel.stderr, { end: false });

    // After the client is gone, output has nowhere to go: drain it so the command is never blocked on a full pipe.
    const discardOutput = () => {
      child.stdout.unpipe(channel);
      child.stderr.unpipe(channel.stderr);
      child.stdout.resume();
      child.stderr.resume();
    };
    channel.once("close", discardOutput);
    session.once("close", discardOutput);

    child.on("error", (error) => {
      context.untrack(sessionProcess);
      if (!closed) {
        channel.stderr.write(`tunnel test server: cannot start the session process: ${error.message}\n`);
        channel.exit(127);
        channel.end();
      }
    });
    child.on("exit", (_code, signal) => {
      // The session process itself was killed (not the command): the connection drops, as with sshd's child.
      if (signal !== null && sessionProcess.status === undefined) context.serverProcessKilled(signal);
    });
    child.on("close", () => {
      sessionProcess.done();
      context.untrack(sessionProcess);
      const status = sessionProcess.status;
      if (closed) return;
      // Killed by a signal: the connection was dropped above. Otherwise the helper failed before the command ran.
      if (status !== undefined) void finish(channel, status);
      else if (child.signalCode === null) void finish(channel, { exitCode: 255 });
    });
    return sessionProcess;
  }
}

type WriteFunction = (data: Buffer, encoding: BufferEncoding | null, callback: () => void) => void;

/**
 * When the client's window is full, ssh2's server channel parks one chunk of stdout (`_chunk`) and one of stderr
 * (`_chunkErr`) and, on the next window adjust, retries only the first that is set — and never forgets a chunk once it
 * was sent. A parked stderr chunk then waits forever behind a stale stdout one (or the stale one is sent twice), so a
 * command writing both streams hangs. This keeps the parked chunks exact and retries the other stream after each
 * write while window is left.
 */
function repairWindowRetries(channel: ServerChannel): void {
  const state = channel as unknown as {
    _write: WriteFunction;
    _chunk: Buffer | undefined;
    _chunkcb: (() => void) | undefined;
    _chunkErr: Buffer | undefined;
    _chunkcbErr: (() => void) | undefined;
    outgoing: { window: number };
  };
  const stderr = channel.stderr as unknown as { _write: WriteFunction };
  const writeStdout = state._write;
  const writeStderr = stderr._write;
  if (typeof writeStdout !== "function" || typeof writeStderr !== "function") return;
  state._write = (data, encoding, callback) => {
    state._chunk = undefined;
    state._chunkcb = undefined;
    writeStdout.call(channel, data, encoding, callback);
    if (state._chunk === undefined && state._chunkErr !== undefined && state.outgoing.window > 0) {
      stderr._write(state._chunkErr, null, state._chunkcbErr as () => void);
    }
  };
  stderr._write = (data, encoding, callback) => {
    state._chunkErr = undefined;
    state._chunkcbErr = undefined;
    writeStderr.call(channel.stderr, data, encoding, callback);
    if (state._chunkErr === undefined && state._chunk !== undefined && state.outgoing.window > 0) {
      state._write(state._chunk, null, state._chunkcb as () => void);
    }
  };
}

/** Send the exit status after every byte of output was handed to the channel, then close it. */
async function finish(channel: ServerChannel, status: Status): Promise<void> {
  await Promise.all([flushed(channel), flushed(channel.stderr)]);
  if ((channel as unknown as { outgoing: { state: string } }).outgoing.state !== "open") return;
  if ("exitCode" in status) channel.exit(status.exitCode);
  else {
    const name = (signalNames.get(status.signal) ?? "").replace(/^SIG/, "");
    // RFC 4254 has no names for the other signals (and ssh2 sends none): report them as a shell would.
    if (WIRE_SIGNALS.has(name)) channel.exit(name, false, "");
    else channel.exit(128 + status.signal);
  }
  channel.end();
}

/** Resolves once everything written to `stream` so far has been passed on (to the SSH window). */
function flushed(stream: Writable): Promise<void> {
  if (stream.writableLength === 0) return Promise.resolve();
  return new Promise((resolve) => stream.write(Buffer.alloc(0), () => resolve()));
}
