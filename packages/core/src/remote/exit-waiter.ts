/**
 * The exit waiter: a few lines around a prepared command, for transports that cannot learn how it ended otherwise.
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
 * nonce (the transport strips them from the stream, e.g. transport-openssh's `MarkerFilter`).
 */
import { quote } from "../quote.js";

/**
 * The perl waiter. Arguments: nonce, group (1: the command gets a process group of its own), framed (1: stdin carries
 * frames, see `stdin-frames.ts`), the caller's `PERL_BADLANG` and whether it was set, command. perl starts with
 * `PERL_BADLANG=0` — fish sets `LC_CTYPE` to a locale the host may not have, and perl would warn about it on the
 * command's stderr — and gives the command the caller's value back. No module is loaded unless the command died by
 * a signal (then `Config`, for the name). Written without single quotes: it travels inside a single-quoted shell word.
 *
 * Framed, the waiter itself feeds the command's stdin through a pipe (no extra process): one `select` loop reads the
 * frames, writes data to the pipe in pieces a writable pipe always takes whole (so a command that stops reading never
 * blocks the loop), closes the pipe on the end-of-input frame and signals the command's group on a signal frame.
 * The loop also watches the session: end of its stdin without the client's done frame, or the reader of its stdout
 * gone (`select` reports a pipe or socket whose other end closed as readable), means the channel closed — the
 * command is sent TERM, then KILL a second later. A command never outlives its channel.
 */
const PERL_WAITER = [
  "my($n,$g,$f,$b,$h,$c,$A,$R)=@ARGV;$R=0 unless $f;",
  "if($h){$ENV{PERL_BADLANG}=$b}else{delete $ENV{PERL_BADLANG}}",
  // Survive group signals (a handler, not IGNORE: exec resets handlers to default in the child, not ignored ones).
  "my @t=grep !/^(?:KILL|STOP|CHLD|CLD|CONT|TSTP|TTIN|TTOU|WINCH|URG|NUM3[23])$/,keys %SIG;$SIG{$_}=sub{} for @t;",
  // Started ahead of its command: say so, then read the command frame, byte by byte up to its length (nothing of
  // the frames behind it may be read ahead). The end of stdin before it: the channel closed, nothing ran.
  String.raw`if($A){print STDERR "$n:ready:perl
";my $l=q();while(1){my $u=sysread(STDIN,my $y,1);exit 0 unless $u;last if $y eq qq(
);$l.=$y;exit 0 if length($l)>12}exit 0 unless $l=~/^c(\d+)$/;my $m=$1;$c=q();while(length($c)<$m){my $u=sysread(STDIN,$c,$m-length($c),length $c);exit 0 unless $u}}`,
  "my($r,$o,$er,$ew);",
  String.raw`if(($f&&!pipe($r,$o))||($R&&!pipe($er,$ew))){print STDERR "tunnel: cannot make a pipe: $!\n";exit 126}`,
  "my $p=fork;",
  String.raw`if(!defined $p){print STDERR "tunnel: cannot fork: $!\n";exit 126}`,
  // The child reports, in one write and before the command can print anything, the group to signal: its own, or
  // the session's when it shares that (pty). It takes the default handlers back first: a signal sent once the
  // report is out must stop the child even before it has become the command's shell, not be caught and lost.
  String.raw`if(!$p){$SIG{$_}=q(DEFAULT) for @t;if($f){close $o;open(STDIN,"<&",$r);close $r}setpgrp(0,0) if $g;print STDERR "$n:pid:".($g?$$:getppid()).":perl\n";if($R){close $er;open(STDERR,">&",$ew);close $ew}exec{q(/bin/sh)}q(sh),q(-c),$c;print STDERR "/bin/sh: $!\n";exit 127}`,
  "setpgrp($p,$p) if $g;",
  "my $w;",
  "if($f){",
  "close $r;close $ew if $R;",
  // Signals come from a process of a group of its own: sudo does not pass on a signal sent from its parent's group.
  "my $k=sub{my $q=fork;if(defined $q&&!$q){setpgrp(0,0);kill $_[0],-$p;exit 0}kill $_[0],-$p unless defined $q;waitpid($q,0) if $q};",
  // 4096 bytes fit a writable Linux pipe whole, PIPE_BUF (512) any other.
  "my($i,$d,$j,$e,$x,$z,$v)=(q(),q(),0,0,0,$^O eq q(linux)?4096:512,-p STDOUT||-S STDOUT);",
  // The child's end wakes the select below through a pipe of its own (at most one byte in it at a time), so an end
  // that comes just before select blocks is seen at once.
  "my($cr,$cw,$cp);pipe($cr,$cw);$SIG{CHLD}=sub{syswrite($cw,q(c)) unless $cp++};",
  "while(1){",
  // Relaying, the loop goes on after the child's end until its stderr ends: a background process may hold it.
  "if(!defined $w&&waitpid($p,1)==$p){$w=$?}last if defined $w&&!$er;",
  "if($x==2&&defined $w){$k->(q(TERM));last}",
  "if($x==2){$k->(q(TERM));for(1..10){if(waitpid($p,1)==$p){$w=$?;last}select(undef,undef,undef,0.1)}last if defined $w;$k->(q(KILL));waitpid($p,0);$w=$?;last}",
  "my($rv,$wv)=(q(),q());vec($rv,1,1)=1 if $v;vec($rv,fileno($cr),1)=1;vec($rv,fileno($er),1)=1 if $er;",
  // Reading stops while 8 MiB wait for a command that does not read: more than a channel's window holds in flight,
  // so a signal frame sent behind them still arrives.
  "vec($rv,0,1)=1 if !$x&&length($d)-$j<8388608;",
  "vec($wv,fileno($o),1)=1 if $o&&length($d)>$j;",
  // The timeout is a backstop only: the pipe above reports the child's end.
  "next if select($rv,$wv,undef,1)<=0;",
  "if(vec($rv,fileno($cr),1)){sysread($cr,my $t,16);$cp=0;next}",
  "if(vec($rv,1,1)){$x=2;next}",
  // The command's stderr on to the session's, whole (a write interrupted by a signal is tried again).
  "if($er&&vec($rv,fileno($er),1)){my $l=sysread($er,my $y,65536);if(defined $l){if($l){my $q=0;while($q<$l){my $u=syswrite(STDERR,$y,$l-$q,$q);if(!defined $u){next if $!==4;last}$q+=$u}}else{close $er;undef $er}}}",
  "if(vec($rv,0,1)){my $l=sysread(STDIN,$i,65536,length $i);if(defined $l&&!$l){$x=2;next}}",
  String.raw`while(1){if($i=~/^d(\d+)\n/){my $t=length($1)+2;last if length($i)<$t+$1;$d.=substr($i,$t,$1) if $o;substr($i,0,$t+$1)=q()}elsif($i=~s/^e\n//){$e=1}elsif($i=~s/^s([A-Z0-9]+)\n//){$k->($1)}elsif($i=~s/^q\n//){$x=1}else{last}}`,
  "if($o&&length($d)>$j&&vec($wv,fileno($o),1)){my $l=syswrite($o,$d,$z,$j);if($l){$j+=$l}else{close $o;undef $o;$d=q();$j=0}}",
  "if($j>=length $d){$d=q();$j=0}elsif($j>1048576){substr($d,0,$j)=q();$j=0}",
  "if($o&&$e&&!length $d){close $o;undef $o}",
  "}",
  "}else{waitpid($p,0);$w=$?}",
  "my $s=$w&127;",
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
    // The report comes from the subshell, whose handlers are the defaults again (a subshell resets caught traps):
    // a signal sent once it is out reaches a process that dies of it, never the waiter's trap.
    String.raw`else (printf '%s:pid:%s:sh\n' "$n" "$$" >&3; exec 2>&3 3>&-; exec /bin/sh -c "$c"); fi`,
  "s=$?",
  String.raw`if [ "$s" -gt 128 ] && [ "$s" -le 192 ]; then m=$(kill -l "$s" 2>/dev/null) || m=; printf '%s:signal:%s:%s\n' "$n" $((s - 128)) "$m" >&3`,
  String.raw`else printf '%s:exit:%s\n' "$n" "$s" >&3; fi`,
  'exit "$s"',
].join("; ");

/** The traps of the sh waiters: survive a signal to the group, while the command gets default handlers. */
const TRAPPED = "HUP INT QUIT PIPE ALRM TERM USR1 USR2";

/**
 * The framed sh waiter's inner script (arguments: nonce, command, group or 0 for its own pid), in a group of its own
 * when the host has `setsid`. A pipeline: the left side decodes the frames (`printf` turns a data frame's octal
 * escapes back into bytes) into the command's stdin, signals the group on a signal frame and, when the channel's
 * stdin ends without the done frame, sends TERM and a second later KILL; the right side runs the command and
 * reports how it ended. The left side ignores the signals (so a signal frame never interrupts it) and sends them
 * through `setsid kill` where it can: sudo does not pass on a signal sent from its parent's group.
 */
const SH_FRAMED_INNER = [
  `trap : ${TRAPPED}`,
  'G=$3; [ "$G" = 0 ] && G=$$',
  `{ trap '' ${TRAPPED}; ` +
    'k() { setsid kill -s "$1" -- "-$G" 2>/dev/null || kill -s "$1" -- "-$G" 2>/dev/null; }; ' +
    'while IFS= read -r l; do case $l in d*) printf "${l#d}";; e) exec >&-;; s*) k "${l#s}";; q) exit 0;; esac; done; ' +
    "k TERM; sleep 1; k KILL; } | " +
    // The right side sets its traps (a pipeline's subshell starts with default handlers), then starts the command
    // in a subshell of its own, which has the default handlers back and reports the group: a signal frame, sent
    // only after that report, reaches a process that dies of it — never a trap that would swallow it before the
    // command's shell runs.
    `{ trap : ${TRAPPED}; ` +
    String.raw`(printf '%s:pid:%s:sh\n' "$1" "$G" >&3; exec /bin/sh -c "$2" 2>&3 3>&-); s=$?; ` +
    String.raw`if [ "$s" -gt 128 ] && [ "$s" -le 192 ]; then m=$(kill -l "$s" 2>/dev/null) || m=; printf '%s:signal:%s:%s\n' "$1" $((s - 128)) "$m" >&3; ` +
    String.raw`else printf '%s:exit:%s\n' "$1" "$s" >&3; fi; exit "$s"; }`,
].join("\n");

/** The framed sh waiter (no perl on the host), with `$n` the nonce, `$g` the group flag and `$c` the command. */
const SH_FRAMED_WAITER = [
  `trap : ${TRAPPED}`,
  "exec 3>&2 2>/dev/null",
  // Started ahead of its command: say so, then read the command frame (`read` takes a pipe byte by byte, so the
  // frames behind it stay for the decoder) and decode it; the `x` keeps the command's trailing newlines.
  'if [ "$a" = 1 ]; then printf \'%s:ready:sh\\n\' "$n" >&3; IFS= read -r l || exit 0; case $l in c*) ;; *) exit 0;; esac; c=$(printf "${l#c}"; echo x); c=${c%x}; fi',
  `w=${quote(SH_FRAMED_INNER)}`,
  // A subshell that execs setsid: not a group leader, so setsid(1) makes it one without forking.
  'if [ "$g" = 1 ] && command -v setsid >/dev/null 2>&1; then (exec setsid /bin/sh -c "$w" sh "$n" "$c" 0); else /bin/sh -c "$w" sh "$n" "$c" $$; fi',
  'exit "$?"',
].join("; ");

const PERL_WORD = quote(PERL_WAITER);

export interface ExitWaiterOptions {
  /** Wait through perl when the host has it (exact status). Default true. */
  readonly exact?: boolean;
  /**
   * Give the command a process group of its own (and report that group). Default true; false for a pty session,
   * where the session already leads the terminal's group and a new group would lose the terminal.
   */
  readonly group?: boolean;
  /**
   * The session's stdin carries frames (`stdin-frames.ts`) rather than the command's bytes: the waiter feeds the
   * command's stdin, signals its group on request, and stops the command when the channel closes. Default false
   * (a pty session, or a local file the master reads as stdin).
   */
  readonly framed?: boolean;
  /**
   * Start without the command: the waiter reports `ready` and reads the command from the session's stdin, as the
   * first frame (`commandFrame` in `stdin-frames.ts`), so a session can be opened before its command is known.
   * Needs `framed`; `command` is then ignored.
   */
  readonly commandFromStdin?: boolean;
  /**
   * The perl waiter passes the command's stderr on through a pipe of its own and reports how the command ended only
   * once that pipe has ended (every process holding it is done): the report is then the last byte of the session's
   * stderr, so a caller that cannot see the session end (a ControlMaster's own session) knows the stderr complete.
   * Needs `framed`.
   */
  readonly relayStderr?: boolean;
  /**
   * Only the perl waiter: on a host without perl the script exits at once, having run nothing and reported nothing.
   * Needs `exact` (the default).
   */
  readonly requirePerl?: boolean;
  /**
   * First of all, report the server's session process: the command name (`/proc/<ppid>/comm`) of the login shell's
   * parent, `sshd` or `dropbear` (empty where there is no `/proc`). A transport that cannot read the server's
   * identification line learns its software from it. No process is started for it.
   */
  readonly reportServer?: boolean;
}

/**
 * The session script for `command`: a POSIX sh script, to be sent through `loginShellCommand`. With `exact` the
 * shell becomes the perl waiter when the host has perl, and stays the sh waiter otherwise.
 */
export function exitWaiterScript(command: string, nonce: string, options: ExitWaiterOptions = {}): string {
  const group = options.group === false ? 0 : 1;
  const framed = options.framed === true ? 1 : 0;
  const ahead = options.commandFromStdin === true ? 1 : 0;
  if (ahead && !framed) throw new TypeError("a waiter can read its command from stdin only when stdin is framed");
  const relay = options.relayStderr === true ? 1 : 0;
  if (relay && !framed) throw new TypeError("a waiter relays the command's stderr only when stdin is framed");
  if (options.requirePerl === true && options.exact === false) throw new TypeError("a waiter that requires perl is exact");
  const perl =
    options.exact === false
      ? ""
      : "command -v perl >/dev/null 2>&1 && { b=${PERL_BADLANG-}; h=${PERL_BADLANG+1}; PERL_BADLANG=0; export PERL_BADLANG; " +
        `exec perl -e ${PERL_WORD} -- "$n" "$g" "$f" "$b" "$h" "$c" "$a" "$r"; }; `;
  const fallback = options.requirePerl === true ? "exit 0" : framed ? SH_FRAMED_WAITER : SH_WAITER;
  // The script's shell is the login shell exec'd: its parent is the server's session process.
  const server =
    options.reportServer === true
      ? String.raw`s=; IFS= read -r s 2>/dev/null </proc/$PPID/comm; printf '%s:server:%s
' "$n" "$s" >&2; `
      : "";
  return `n=${nonce}; g=${group}; f=${framed}; a=${ahead}; r=${relay}; c=${ahead ? "" : quote(command)}; ${server}${perl}${fallback}`;
}

/**
 * One report line of the waiter (the part after `<nonce>:`): the server's session process (`reportServer`), ready for its command (`commandFromStdin`), the group
 * started, the exit code, or the signal.
 */
export type WaiterReport =
  | { readonly kind: "ready"; readonly waiter: "perl" | "sh" }
  | { readonly kind: "server"; readonly name: string }
  | { readonly kind: "pid"; readonly pid: number; readonly waiter: "perl" | "sh" | undefined }
  | { readonly kind: "exit"; readonly code: number }
  | { readonly kind: "signal"; readonly number: number; readonly signal: string | null };

/** Parse the part of a report line after `<nonce>:`; `undefined` for anything else. */
export function parseWaiterReport(body: string): WaiterReport | undefined {
  const ready = /^ready:(perl|sh)$/.exec(body);
  if (ready) return { kind: "ready", waiter: ready[1] as "perl" | "sh" };
  // A command name is at most 15 bytes on Linux and may hold any of them (`sshd: user@notty`'s is `sshd`).
  const server = /^server:(.{0,64})$/.exec(body);
  if (server) return { kind: "server", name: server[1]! };
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
