/**
 * The remote side of an exec: a few lines around the prepared command.
 *
 * The ssh client exits 255 for transport errors, for a remote `exit 255` and for a remote death by signal, and
 * through a ControlMaster it never learns a signal's name (the master does not pass `exit-signal` on to its clients).
 * So the session command is a small wrapper, run by the login shell, that
 * 1. reports its pid on stderr (sshd makes the session command a process-group leader, so this is the group to
 *    signal on cancel) — this also proves the command started;
 * 2. runs the prepared command as a child, `$SHELL -c <command>`, exactly as sshd would have run it
 *    (so `$$` inside is the command's own shell);
 * 3. reports how the child ended and exits.
 *
 * Two wrappers, picked on the host at run time:
 * - **perl** (exact; any host with perl, e.g. Debian's perl-base): the login shell `exec`s perl (no extra process),
 *   which forks the command and reads the wait status itself: `$? & 127` is the signal, `$? >> 8` the exit code, so
 *   `exit 130` and a death by SIGINT are told apart for every code 0–255 and every signal. The signal's name comes
 *   from the host's own perl (`Config`'s `sig_name`), so it is right even where numbers differ from this machine's.
 * - **sh** (fallback without perl): the login shell itself forks the command and reads `$?`. A POSIX shell cannot
 *   tell `exit 128+N` from a death by signal N, so a status of 129–192 is reported as the signal `kill -l` names.
 * Both waiters catch the terminating signals (handlers reset to default in the child), so a signal sent to the whole
 * group stops the command while the waiter survives to report how it ended. Report lines carry a random nonce and
 * are stripped from the stream by `MarkerFilter`.
 */
import { randomBytes } from "node:crypto";
import { Transform, type TransformCallback } from "node:stream";
import { quote } from "@tunnel-sh/core";

export function newNonce(): string {
  return `tunnel${randomBytes(12).toString("hex")}`;
}

/**
 * The perl waiter. Arguments: nonce, command. No module is loaded unless the command died by a signal (then `Config`,
 * for the name). Written without single quotes: it travels inside a single-quoted shell word.
 */
const PERL_WAITER = [
  "my($n,$c)=@ARGV;",
  // Survive group signals (a handler, not IGNORE: exec resets handlers to default in the child, not ignored ones).
  "$SIG{$_}=sub{} for grep !/^(?:KILL|STOP|CHLD|CLD|CONT|TSTP|TTIN|TTOU|WINCH|URG|NUM3[23])$/,keys %SIG;",
  String.raw`print STDERR "$n:pid:$$:perl\n";`,
  "my $s=$ENV{SHELL}||q(/bin/sh);(my $a=$s)=~s(.*/)();",
  "my $p=fork;",
  String.raw`if(!defined $p){print STDERR "tunnel: cannot fork: $!\n";exit 126}`,
  String.raw`if(!$p){exec{$s}$a,q(-c),$c;print STDERR "$s: $!\n";exit 127}`,
  "waitpid($p,0);my $w=$?;my $g=$w&127;",
  String.raw`if($g){my $m=eval{require Config;(split q( ),$Config::Config{sig_name})[$g]}||q();print STDERR "$n:signal:$g:$m\n";exit 128+$g}`,
  String.raw`print STDERR "$n:exit:",$w>>8,"\n";exit $w>>8`,
].join("");

/** The sh waiter (no perl on the host), with `$n` the nonce and `$c` the command. */
const SH_WAITER = [
  "trap : HUP INT QUIT PIPE ALRM TERM USR1 USR2",
  String.raw`printf '%s:pid:%s:sh\n' "$n" "$$" >&2`,
  // The shell's own job report ("Killed") goes to /dev/null; the command gets the real stderr back.
  "exec 3>&2 2>/dev/null",
  // A subshell that execs: the job report is printed outside the child's redirections.
  '(exec 2>&3 3>&-; exec "${SHELL:-/bin/sh}" -c "$c")',
  "s=$?",
  String.raw`if [ "$s" -gt 128 ] && [ "$s" -le 192 ]; then m=$(kill -l "$s" 2>/dev/null) || m=; printf '%s:signal:%s:%s\n' "$n" $((s - 128)) "$m" >&3`,
  String.raw`else printf '%s:exit:%s\n' "$n" "$s" >&3; fi`,
  'exit "$s"',
].join("; ");

const PERL_WORD = quote(PERL_WAITER);

/**
 * The session command for `command`. `$SHELL` is set by sshd to the user's login shell. With `exact` (the default)
 * the login shell becomes the perl waiter when the host has perl, and stays the sh waiter otherwise.
 */
export function wrapCommand(command: string, nonce: string, exact = true): string {
  const perl = exact ? `command -v perl >/dev/null 2>&1 && exec perl -e ${PERL_WORD} -- "$n" "$c"; ` : "";
  return `n=${nonce}; c=${quote(command)}; ${perl}${SH_WAITER}`;
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
