/**
 * The session worker: one session that runs many commands, one after another, for transports whose every new
 * session costs a process start on this machine and a session, a login shell and a waiter on the host (a mux client
 * of an OpenSSH ControlMaster: `ssh` starting is most of an exec's CPU). The worker starts once and then runs each
 * command handed to it on the session's stdin; a command costs one fork and exec on the host and nothing here.
 *
 * It is the perl exit waiter (`exit-waiter.ts`) in a loop, with the same guarantees for each command: a process
 * group of its own, its pid reported before it can print anything, exact exit codes and signal names, stdin framed
 * (`stdin-frames.ts`) with signals in band, and the command stopped (TERM, KILL a second later) when the channel
 * closes. What differs is output: the command's stdout reaches the session as frames, so its end is known while the
 * session goes on; its stderr is passed on as it is, and the report of how the command ended is its last byte.
 *
 * Protocol, per command (the worker first reports `ready:perl` on stderr, once):
 * - in: `c<length>\n<bytes>`, the command; then the command's frames (`d`, `e`, `s`) and `q\n` once the client has
 *   the report or gives up on the command; the next command's `c` may follow at once (what came for the last command
 *   after its report is skipped);
 * - out, stderr: `<nonce>:pid:<pgid>:perl`, the command's stderr, then `<nonce>:exit:<code>` or
 *   `<nonce>:signal:<number>:<name>` once the command and every holder of its output have ended;
 * - out, stdout: `o<length>\n<bytes>` frames of the command's stdout, `o0\n` at its end (before the report).
 * The end of the session's stdin, or its stdout's reader gone, means the channel closed: the command is stopped and
 * the worker exits. So does a worker left idle `SESSION_WORKER_IDLE_SECONDS`. Hosts without perl get none: the script exits at once, having run and reported nothing.
 */
import { quote } from "../quote.js";

/**
 * Arguments: nonce, the caller's `PERL_BADLANG` and whether it was set. Written without single quotes: it travels
 * inside a single-quoted shell word. No module is loaded unless a command died by a signal (then `Config`).
 */
const WORKER = [
  "my($n,$b,$h,$T)=@ARGV;",
  "if($h){$ENV{PERL_BADLANG}=$b}else{delete $ENV{PERL_BADLANG}}",
  // Survive group signals (a handler, not IGNORE: exec resets handlers to default in the child, not ignored ones).
  "my @t=grep !/^(?:KILL|STOP|CHLD|CLD|CONT|TSTP|TTIN|TTOU|WINCH|URG|NUM3[23])$/,keys %SIG;$SIG{$_}=sub{} for @t;",
  // A child's end wakes the select below through a pipe of its own (at most one byte in it at a time).
  "my($cr,$cw,$cp);pipe($cr,$cw);$SIG{CHLD}=sub{syswrite($cw,q(c)) unless $cp++};",
  // 4096 bytes fit a writable Linux pipe whole, PIPE_BUF (512) any other: no write ever blocks the loop.
  "my($z,$v,$i)=($^O eq q(linux)?4096:512,-p STDOUT||-S STDOUT,q());",
  "my $rd=sub{my $l=sysread(STDIN,$i,65536,length $i);return 1 if !defined $l&&$!==4;$l};",
  String.raw`print STDERR "$n:ready:perl\n";`,
  "while(1){",
  // The command frame. The frames a client sent the last command after its report (its done frame, late stdin or
  // signals) are skipped; anything else, the end of stdin, or $T seconds without a frame end the worker (nothing
  // runs): a worker whose client can no longer reach it (a link lost without a word) does not wait for sshd to notice.
  String.raw`my $c;while(!defined $c){if($i=~/^([cd])(\d+)\n/){my $t=length($2)+2;if(length($i)>=$t+$2){$c=substr($i,$t,$2) if $1 eq q(c);substr($i,0,$t+$2)=q();next}}elsif($i=~s/^(?:e|q|s[A-Z0-9]+)\n//){next}elsif($i!~/^(?:[cd]\d{0,20}|s[A-Z0-9]{0,16}|[eq])?$/){exit 0}if(!length $i){my $u=q();vec($u,0,1)=1;my $s=select($u,undef,undef,$T);next if $s<0;exit 0 unless $s}exit 0 unless $rd->()}`,
  // Each command gets a waiter process of its own, forked from the worker: the command's parent is new for every
  // command, as in a session of its own (sudo keys its cached credentials on the parent when there is no terminal,
  // so a command never runs sudo on an earlier command's password). The waiter hands back the frames it read past
  // the command's done frame through a pipe.
  "my($lr,$lw);pipe($lr,$lw);my $W=fork;",
  String.raw`if(!defined $W){print STDERR "tunnel: cannot fork: $!\n";exit 126}`,
  // A waiter that could not start its command (no pipe, no fork) ends the worker: its client learns it at once.
  String.raw`if($W){close $lw;1 while waitpid($W,0)==-1&&$!==4;exit 126 if $?;$i=q();while(1){my $l=sysread($lr,$i,65536,length $i);next if !defined $l&&$!==4;last unless $l}close $lr;next}`,
  "close $lr;",
  "my($r,$o,$sr,$sw,$er,$ew);",
  String.raw`unless(pipe($r,$o)&&pipe($sr,$sw)&&pipe($er,$ew)){print STDERR "tunnel: cannot make a pipe: $!\n";exit 126}`,
  "my $p=fork;",
  String.raw`if(!defined $p){print STDERR "tunnel: cannot fork: $!\n";exit 126}`,
  // The child reports its group in one write, before the command can print anything, with the default handlers
  // back first: a signal sent once the report is out stops it even before it has become the command's shell.
  String.raw`if(!$p){$SIG{$_}=q(DEFAULT) for @t,q(CHLD);close $o;open(STDIN,"<&",$r);close $r;close $sr;open(STDOUT,">&",$sw);close $sw;setpgrp(0,0);print STDERR "$n:pid:$$:perl\n";close $er;open(STDERR,">&",$ew);close $ew;exec{q(/bin/sh)}q(sh),q(-c),$c;print STDERR "/bin/sh: $!\n";exit 127}`,
  "setpgrp($p,$p);close $r;close $sw;close $ew;",
  // Signals come from a process of a group of its own: sudo does not pass on a signal sent from its parent's group.
  "my $k=sub{my $q=fork;if(defined $q&&!$q){setpgrp(0,0);kill $_[0],-$p;exit 0}kill $_[0],-$p unless defined $q;waitpid($q,0) if $q};",
  // $d/$j the command's stdin not yet written, $e its end asked for, $ob stdout frames not yet written, $w the wait
  // status, $q the client's done frame seen, $x 2 once the channel closed, $y the report written.
  "my($d,$j,$e,$ob,$w,$q,$x,$y)=(q(),0,0,q(),undef,0,0,0);",
  "while(1){",
  String.raw`while(!$q){if($i=~/^d(\d+)\n/){my $t=length($1)+2;last if length($i)<$t+$1;$d.=substr($i,$t,$1) if $o;substr($i,0,$t+$1)=q()}elsif($i=~s/^e\n//){$e=1}elsif($i=~s/^s([A-Z0-9]+)\n//){$k->($1) unless $y}elsif($i=~s/^q\n//){$q=1}else{last}}`,
  // Frames already read may have ended the command's stdin: close its pipe before select waits for more.
  "if($j>=length $d){$d=q();$j=0}elsif($j>1048576){substr($d,0,$j)=q();$j=0}",
  "if($o&&$e&&!length $d){close $o;undef $o}",
  "if(!defined $w&&waitpid($p,1)==$p){$w=$?}",
  // Done once the command has ended and every holder of its output has closed it (a background process may hold it).
  "if(defined $w&&!$sr&&!$er&&!length($ob)&&!$y){close $o if $o;undef $o;$y=1;",
  String.raw`my $u=qq(o0\n);while(length $u){my $l=syswrite(STDOUT,$u);if(defined $l){substr($u,0,$l)=q()}elsif($!!=4){$x=2;last}}`,
  "my $s=$w&127;",
  String.raw`if($s){my $m=eval{require Config;(split q( ),$Config::Config{sig_name})[$s]}||q();print STDERR "$n:signal:$s:$m\n"}else{print STDERR "$n:exit:".($w>>8)."\n"}}`,
  // Reported: the waiter is done (it never waits on the client, whose link may be gone).
  String.raw`if($y){while(length $i){my $l=syswrite($lw,$i);last unless $l;substr($i,0,$l)=q()}exit 0}`,
  "if($x==2){if(!$y){$k->(q(TERM));unless(defined $w){for(1..10){if(waitpid($p,1)==$p){$w=$?;last}select(undef,undef,undef,0.1)}$k->(q(KILL)) unless defined $w}}exit 0}",
  "my($rv,$wv)=(q(),q());vec($rv,1,1)=1 if $v;vec($rv,fileno($cr),1)=1;vec($rv,fileno($er),1)=1 if $er;",
  "vec($rv,fileno($sr),1)=1 if $sr&&length($ob)<1048576;",
  // Reading stops while 8 MiB wait for a command that does not read: a signal frame sent behind them still arrives.
  "vec($rv,0,1)=1 if length($d)-$j<8388608;",
  "vec($wv,fileno($o),1)=1 if $o&&length($d)>$j;vec($wv,1,1)=1 if length $ob;",
  // The timeout is a backstop only: the pipe above reports a child's end.
  "next if select($rv,$wv,undef,1)<=0;",
  "if(vec($rv,fileno($cr),1)){sysread($cr,my $t,16);$cp=0}",
  "if($v&&vec($rv,1,1)){$x=2;next}",
  // The command's stderr on to the session's, whole (a write interrupted by a signal is tried again).
  "if($er&&vec($rv,fileno($er),1)){my $l=sysread($er,my $u,65536);if(defined $l){if($l){my $g=0;while($g<$l){my $m=syswrite(STDERR,$u,$l-$g,$g);if(!defined $m){next if $!==4;last}$g+=$m}}else{close $er;undef $er}}}",
  String.raw`if($sr&&vec($rv,fileno($sr),1)){my $l=sysread($sr,my $u,65536);if(defined $l){if($l){$ob.=q(o).$l.qq(\n).$u}else{close $sr;undef $sr}}}`,
  "if(length($ob)&&vec($wv,1,1)){my $l=syswrite(STDOUT,$ob,$z);if(defined $l){substr($ob,0,$l)=q()}elsif($!!=4){$x=2}}",
  "if(vec($rv,0,1)){my $l=sysread(STDIN,$i,65536,length $i);$x=2 if defined $l&&!$l}",
  "if($o&&length($d)>$j&&vec($wv,fileno($o),1)){my $l=syswrite($o,$d,$z,$j);if($l){$j+=$l}else{close $o;undef $o;$d=q();$j=0}}",
  "}",
  "}",
].join("");

const WORKER_WORD = quote(WORKER);

/**
 * The session script of a worker reporting with `nonce`: a POSIX sh script, to be sent through `loginShellCommand`.
 * The shell becomes the perl worker when the host has perl and exits 0 at once otherwise.
 */
export function sessionWorkerScript(nonce: string, idleSeconds = SESSION_WORKER_IDLE_SECONDS): string {
  if (!Number.isInteger(idleSeconds) || idleSeconds < 1) throw new TypeError(`not a whole number of seconds: ${idleSeconds}`);
  return (
    `n=${nonce}; command -v perl >/dev/null 2>&1 && { b=\${PERL_BADLANG-}; h=\${PERL_BADLANG+1}; PERL_BADLANG=0; export PERL_BADLANG; ` +
    `exec perl -e ${WORKER_WORD} -- "$n" "$b" "$h" ${idleSeconds}; }; exit 0`
  );
}

/**
 * How long a worker waits for its next command before it exits, having run nothing. A client hands a worker idle for
 * half of it no new command (it may be on its way out), so a command is never sent to a worker that is leaving.
 */
export const SESSION_WORKER_IDLE_SECONDS = 10;

/** Bytes of a stdout frame header at most: `o`, a length, the newline. */
const HEADER_LIMIT = 24;

/**
 * Reads a worker's stdout: `o<length>\n<bytes>` frames of the running command's stdout, `o0\n` at its end. Anything
 * else is a broken session (e.g. a login shell's start-up files printing before the worker ran): `onError`, after
 * which nothing more is read.
 */
export class WorkerOutputReader {
  private header = "";
  private remaining = 0;
  private broken = false;

  constructor(
    private readonly handlers: {
      /** Bytes of the running command's stdout. */
      readonly data: (chunk: Buffer) => void;
      /** The running command's stdout has ended. */
      readonly end: () => void;
      /** Not a worker's frames. */
      readonly error: (reason: string) => void;
    },
  ) {}

  /** Feed bytes of the session's stdout. */
  write(chunk: Buffer): void {
    let at = 0;
    while (at < chunk.length && !this.broken) {
      if (this.remaining > 0) {
        const take = Math.min(this.remaining, chunk.length - at);
        this.remaining -= take;
        this.handlers.data(chunk.subarray(at, at + take));
        at += take;
        continue;
      }
      const newline = chunk.indexOf(0x0a, at);
      const end = newline === -1 ? chunk.length : newline;
      this.header += chunk.toString("latin1", at, end);
      if (this.header.length > HEADER_LIMIT) return this.fail(`a stdout frame header longer than ${HEADER_LIMIT} bytes`);
      if (newline === -1) {
        if (!/^(?:o\d*)?$/.test(this.header)) return this.fail("stdout that is not a worker's frames");
        return;
      }
      at = newline + 1;
      const match = /^o(\d+)$/.exec(this.header);
      this.header = "";
      if (!match) return this.fail("stdout that is not a worker's frames");
      const length = Number(match[1]);
      if (length === 0) this.handlers.end();
      else this.remaining = length;
    }
  }

  private fail(reason: string): void {
    this.broken = true;
    this.handlers.error(reason);
  }
}
