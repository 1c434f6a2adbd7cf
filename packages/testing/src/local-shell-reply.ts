/**
 * A `FakeTransport` spawn reply that really runs the command, on this machine, in `/bin/sh -c` — so that the fake
 * can pass the transport conformance suite with real streams, real exit statuses and real signals.
 *
 * Each spawned command gets a small "session" process (like the sshd child that serves a connection) that runs the
 * command as the leader of its own process group and reports its exact exit status, so a death by signal is told apart
 * from an exit code. The command's `$PPID` is that session process: killing it makes the fake connection lost, as
 * killing sshd's child does with a real server. `kill()` signals the command's whole process group. With a pty the
 * command runs under util-linux `script`, so `tty` succeeds and lines end in `\r\n`.
 */
import { spawn } from "node:child_process";
import { constants } from "node:os";
import type { Readable } from "node:stream";
import { ConnectError, type ExitStatus, type PtyOptions, type SpawnRequest } from "@tunnel-sh/core";
import type { FakeConnection } from "./fake-connection.js";
import type { FakeProcessIo, SpawnHandler, SpawnReplyFunction } from "./fake-transport.js";
import { childEnvironment } from "./child-environment.js";

// Arguments: command, pty ("1" or ""), TERM, rows, cols. Reports on fd 3: "pid N", then "exit N" or "signal N".
const SESSION_SCRIPT = String.raw`
use strict;
my ($command, $pty, $term, $rows, $cols) = @ARGV;
open(my $report, '>&=', 3) or die "no report descriptor: $!";
select((select($report), $| = 1)[0]);
my $pid = fork();
die "fork failed: $!" unless defined $pid;
if ($pid == 0) {
  close($report);
  setpgrp(0, 0);
  if ($pty) {
    $ENV{TERM} = $term;
    $ENV{SHELL} = '/bin/sh';
    exec('script', '-qfec', "stty rows $rows cols $cols 2>/dev/null; $command", '/dev/null');
  } else {
    exec('/bin/sh', '-c', $command);
  }
  exit 127;
}
setpgrp($pid, $pid);
print $report "pid $pid\n";
waitpid($pid, 0);
my $status = $?;
if ($status & 127) { print $report "signal ", ($status & 127), "\n"; } else { print $report "exit ", ($status >> 8), "\n"; }
exit 0;
`;

const signalNames = new Map<number, string>(Object.entries(constants.signals).map(([name, number]) => [number, name]));

/** Process groups still running, killed if the test process exits first. */
const liveGroups = new Set<number>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once("exit", () => {
    for (const group of liveGroups) {
      try {
        process.kill(-group, "SIGKILL");
      } catch {
        // already gone
      }
    }
  });
}

/**
 * Run every spawned command locally in `/bin/sh -c`, as the user running the tests.
 * @example new FakeTransport({ spawn: localShellReply })
 */
export const localShellReply: SpawnReplyFunction = (): SpawnHandler => ({ run: runLocalShell });

function ptySettings(pty: SpawnRequest["pty"]): { term: string; rows: number; cols: number } | undefined {
  if (!pty) return undefined;
  const options: PtyOptions = pty === true ? {} : pty;
  const whole = (value: number | undefined, fallback: number) => (value !== undefined && Number.isInteger(value) && value > 0 ? value : fallback);
  return { term: options.term ?? "xterm", rows: whole(options.rows, 24), cols: whole(options.cols, 80) };
}

function runLocalShell(io: FakeProcessIo): Promise<ExitStatus> {
  const pty = ptySettings(io.request.pty);
  const child = spawn(
    "perl",
    ["-e", SESSION_SCRIPT, "--", io.request.command, pty ? "1" : "", pty?.term ?? "", String(pty?.rows ?? 0), String(pty?.cols ?? 0)],
    { stdio: ["pipe", "pipe", "pipe", "pipe"], env: childEnvironment() },
  );
  installExitHook();
  return new Promise<ExitStatus>((resolve, reject) => {
    let group: number | undefined;
    let status: ExitStatus | undefined;
    const pendingKills: string[] = [];
    const killGroup = (signal: string) => {
      if (group === undefined) {
        pendingKills.push(signal);
        return;
      }
      try {
        process.kill(-group, signal as NodeJS.Signals);
      } catch {
        // the group is gone already
      }
    };
    io.onKill(killGroup);

    const report = child.stdio[3] as Readable;
    let reported = "";
    report.on("data", (chunk: Buffer) => {
      reported += chunk.toString("utf8");
      const pid = /^pid (\d+)$/m.exec(reported);
      if (pid && group === undefined) {
        group = Number(pid[1]);
        liveGroups.add(group);
        for (const signal of pendingKills.splice(0)) killGroup(signal);
      }
      const exit = /^exit (\d+)$/m.exec(reported);
      const signal = /^signal (\d+)$/m.exec(reported);
      if (exit) status = { exitCode: Number(exit[1]), signal: null };
      else if (signal) status = { exitCode: null, signal: signalNames.get(Number(signal[1])) ?? `SIG${signal[1]}` };
    });
    report.on("error", () => {});

    io.stdin.pipe(child.stdin);
    child.stdin.on("error", () => {
      // the command may exit without reading its stdin
    });
    child.stdout.pipe(io.stdout, { end: false });
    child.stderr.pipe(io.stderr, { end: false });

    child.on("error", (error) => {
      if (group !== undefined) liveGroups.delete(group);
      reject(new Error(`could not start perl for the local shell: ${error.message}`));
    });
    // The session process itself was killed (the test's way to drop a connection): the connection is lost.
    child.on("exit", (_code, signal) => {
      if (signal && status === undefined) loseConnection(io.connection, signal);
    });
    child.on("close", () => {
      if (group !== undefined) liveGroups.delete(group);
      io.stdin.unpipe(child.stdin);
      if (status) resolve(status);
      else reject(new ConnectError("the session process ended without an exit status", { lost: true, phase: "exec" }));
    });
  });
}

function loseConnection(connection: FakeConnection, signal: string): void {
  connection.drop(
    new ConnectError(`the session process serving the connection was killed by ${signal}`, {
      lost: true,
      phase: "exec",
      target: connection.target,
    }),
  );
}
