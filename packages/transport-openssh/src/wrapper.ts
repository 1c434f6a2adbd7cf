/**
 * The remote side of an exec: a few lines around the prepared command.
 *
 * The ssh client exits 255 for transport errors, for a remote `exit 255` and for a remote death by signal, and
 * through a ControlMaster it never learns a signal's name (the master does not pass `exit-signal` on to its clients).
 * So the session command is a small wrapper, a POSIX sh script that reaches `/bin/sh` through core's
 * `loginShellCommand` (so it means the same under fish, tcsh or any other login shell), which
 * 1. runs the prepared command as a child, `/bin/sh -c <command>` (so `$$` inside is the command's own shell),
 *    in a process group of its own when there is no pty — dropbear does not make the session command a
 *    process-group leader, so the session's group is not one to signal;
 * 2. reports the pid of that group on stderr (the group to signal on cancel) — this also proves the command started;
 * 3. reports how the child ended and exits.
 *
 * Two waiters, picked on the host at run time:
 * - **perl** (exact; any host with perl, e.g. Debian's perl-base): the shell `exec`s perl (no extra process),
 *   which forks the command (`setpgrp` in both parent and child, so the group exists before anyone signals it) and
 *   reads the wait status itself: `$? & 127` is the signal, `$? >> 8` the exit code, so `exit 130` and a death by
 *   SIGINT are told apart for every code 0–255 and every signal. The signal's name comes from the host's own perl
 *   (`Config`'s `sig_name`), so it is right even where numbers differ from this machine's.
 * - **sh** (fallback without perl, e.g. busybox userlands): the shell itself forks the command, through `setsid`
 *   (GNU or busybox) for a group of its own where there is one, and reads `$?`. A POSIX shell cannot tell
 *   `exit 128+N` from a death by signal N, so a status of 129–192 is reported as the signal `kill -l` names.
 * Both waiters catch the terminating signals (handlers reset to default in the child), so a signal sent to the
 * session's group stops the command while the waiter survives to report how it ended. Report lines carry a random
 * nonce and are stripped from the stream by `MarkerFilter`.
 */
import { randomBytes } from "node:crypto";
import { Transform, type TransformCallback } from "node:stream";
import { quote } from "@tunnel-sh/core";

export function newNonce(): string {
  return `tunnel${randomBytes(12).toString("hex")}`;
}

/**
 * The perl waiter. Arguments: nonce, group (1: the command gets a process group of its own), the caller's
 * `PERL_BADLANG` and whether it was set, command. perl starts with `PERL_BADLANG=0` — fish sets `LC_CTYPE` to a
 * locale the host may not have, and perl would warn about it on the command's stderr — and gives the command the
 * caller's value back. No module is loaded unless the command died by a signal (then `Config`, for the name).
 * Written without single quotes: it travels inside a single-quoted shell word.
 */
const PERL_WAITER = [
  "my($n,$g,$b,$h,$c)=@ARGV;",
  "if($h){$ENV{PERL_BADLANG}=$b}else{delete $ENV{PERL_BADLANG}}",
  // Survive group signals (a handler, not IGNORE: exec resets handlers to default in the child, not ignored ones).
  "$SIG{$_}=sub{} for grep !/^(?:KILL|STOP|CHLD|CLD|CONT|TSTP|TTIN|TTOU|WINCH|URG|NUM3[23])$/,keys %SIG;",
  "my $p=fork;",
  String.raw`if(!defined $p){print STDERR "tunnel: cannot fork: $!\n";exit 126}`,
  // The child reports, in one write and before the command can print anything, the group to signal: its own, or
  // the session's when it shares that (pty).
  String.raw`if(!$p){setpgrp(0,0) if $g;print STDERR "$n:pid:".($g?$$:getppid()).":perl\n";exec{q(/bin/sh)}q(sh),q(-c),$c;print STDERR "/bin/sh: $!\n";exit 127}`,
  "setpgrp($p,$p) if $g;",
  "waitpid($p,0);my $w=$?;my $s=$w&127;",
  String.raw`if($s){my $m=eval{require Config;(split q( ),$Config::Config{sig_name})[$s]}||q();print STDERR "$n:signal:$s:$m\n";exit 128+$s}`,
  String.raw`print STDERR "$n:exit:".($w>>8)."\n";exit $w>>8`,
].join("");

/** The sh waiter (no perl on the host), with `$n` the nonce, `$g` the group flag and `$c` the command. */
const SH_WAITER = [
  "trap : HUP INT QUIT PIPE ALRM TERM USR1 USR2",
  // The shell's own job report ("Killed") goes to /dev/null; the command gets the real stderr back.
  "exec 3>&2 2>/dev/null",
  // A subshell that execs: the job report is printed outside the child's redirections. The subshell is not a group
  // leader, so setsid(1) makes it one without forking: the pid it reports is the group's.
  'if [ "$g" = 1 ] && command -v setsid >/dev/null 2>&1; then ' +
    String.raw`(exec 2>&3 3>&-; exec setsid /bin/sh -c 'printf "%s:pid:%s:sh\n" "$1" "$$" >&2; exec /bin/sh -c "$2"' sh "$n" "$c"); ` +
    String.raw`else printf '%s:pid:%s:sh\n' "$n" "$$" >&3; (exec 2>&3 3>&-; exec /bin/sh -c "$c"); fi`,
  "s=$?",
  String.raw`if [ "$s" -gt 128 ] && [ "$s" -le 192 ]; then m=$(kill -l "$s" 2>/dev/null) || m=; printf '%s:signal:%s:%s\n' "$n" $((s - 128)) "$m" >&3`,
  String.raw`else printf '%s:exit:%s\n' "$n" "$s" >&3; fi`,
  'exit "$s"',
].join("; ");

const PERL_WORD = quote(PERL_WAITER);

export interface WrapOptions {
  /** Wait through perl when the host has it (exact status). Default true. */
  readonly exact?: boolean;
  /**
   * Give the command a process group of its own (and report that group). Default true; false for a pty session,
   * where the session already leads the terminal's group and a new group would lose the terminal.
   */
  readonly group?: boolean;
}

/**
 * The session script for `command`: a POSIX sh script, to be sent through `loginShellCommand`. With `exact` the
 * shell becomes the perl waiter when the host has perl, and stays the sh waiter otherwise.
 */
export function wrapCommand(command: string, nonce: string, options: WrapOptions = {}): string {
  const group = options.group === false ? 0 : 1;
  const perl =
    options.exact === false
      ? ""
      : "command -v perl >/dev/null 2>&1 && { b=${PERL_BADLANG-}; h=${PERL_BADLANG+1}; PERL_BADLANG=0; export PERL_BADLANG; " +
        `exec perl -e ${PERL_WORD} -- "$n" "$g" "$b" "$h" "$c"; }; `;
  return `n=${nonce}; g=${group}; c=${quote(command)}; ${perl}${SH_WAITER}`;
}

export type Marker =
  | { readonly kind: "pid"; readonly pid: number; readonly waiter: "perl" | "sh" | undefined }
  | { readonly kind: "exit"; readonly code: number }
  | { readonly kind: "signal"; readonly number: number; readonly signal: string | null };

/** Parse the part of a marker line after `<nonce>:`. */
export function parseMarker(body: string): Marker | undefined {
  const pid = /^pid:(\d+)(?::(perl|sh))?$/.exec(body);
  if (pid) return { kind: "pid", pid: Number(pid[1]), waiter: pid[2] as "perl" | "sh" | undefined };
  const exit = /^exit:(\d{1,3})$/.exec(body);
  if (exit) return { kind: "exit", code: Number(exit[1]) };
  const signal = /^signal:(\d{1,3}):([A-Za-z0-9+-]*)$/.exec(body);
  if (signal) {
    const name = signal[2]!.toUpperCase().replace(/^SIG/, "");
    return { kind: "signal", number: Number(signal[1]), signal: name && /^[A-Z]/.test(name) ? `SIG${name}` : null };
  }
  return undefined;
}

/**
 * Removes `<nonce>:...\n` report lines from a byte stream, wherever they appear (a report may follow output that
 * did not end in a newline), and hands them to `onMarker`. Bytes are passed through untouched otherwise; a chunk
 * tail that could be the start of a report is held back until the next chunk.
 */
export class MarkerFilter extends Transform {
  private readonly needle: Buffer;
  private pending: Buffer = Buffer.alloc(0);

  constructor(
    nonce: string,
    private readonly onMarker: (marker: Marker) => void,
  ) {
    super();
    this.needle = Buffer.from(`${nonce}:`, "latin1");
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.pending = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    this.drain(false);
    callback();
  }

  override _flush(callback: TransformCallback): void {
    this.drain(true);
    callback();
  }

  private drain(final: boolean): void {
    let buffer = this.pending;
    for (;;) {
      const at = buffer.indexOf(this.needle);
      if (at === -1) break;
      const end = buffer.indexOf(0x0a, at + this.needle.length);
      if (end === -1) {
        if (final || buffer.length - at > 256) {
          // Not a report after all (or the stream ended inside one): pass the bytes through.
          if (at > 0) this.push(buffer.subarray(0, at));
          this.push(buffer.subarray(at, at + this.needle.length));
          buffer = buffer.subarray(at + this.needle.length);
          continue;
        }
        if (at > 0) this.push(buffer.subarray(0, at));
        this.pending = buffer.subarray(at);
        return;
      }
      if (at > 0) this.push(buffer.subarray(0, at));
      let body = buffer.subarray(at + this.needle.length, end).toString("latin1");
      if (body.endsWith("\r")) body = body.slice(0, -1);
      const marker = parseMarker(body);
      if (marker) this.onMarker(marker);
      else this.push(buffer.subarray(at, end + 1));
      buffer = buffer.subarray(end + 1);
    }
    if (final) {
      if (buffer.length > 0) this.push(buffer);
      this.pending = Buffer.alloc(0);
      return;
    }
    // Hold back the longest tail that is a prefix of the needle.
    const keep = partialPrefixLength(buffer, this.needle);
    if (buffer.length - keep > 0) this.push(buffer.subarray(0, buffer.length - keep));
    this.pending = keep > 0 ? Buffer.from(buffer.subarray(buffer.length - keep)) : Buffer.alloc(0);
  }
}

function partialPrefixLength(buffer: Buffer, needle: Buffer): number {
  const max = Math.min(buffer.length, needle.length - 1);
  for (let length = max; length > 0; length--) {
    if (buffer.subarray(buffer.length - length).equals(needle.subarray(0, length))) return length;
  }
  return 0;
}
