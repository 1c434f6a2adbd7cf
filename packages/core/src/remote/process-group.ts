/**
 * A remote command in a process group of its own, for servers whose session command is not a group leader.
 *
 * OpenSSH's sshd makes each session's command a process-group leader and answers an SSH `signal` request with a
 * signal to that group, so a timeout stops `sleep 300; echo done` and everything it started. dropbear does neither:
 * the signal reaches only the session's pid, so the shell dies and its children run on. `inOwnProcessGroup(script)`
 * is a POSIX sh script that runs `script` with `/bin/sh` in a new process group, passes the terminating signals it
 * receives on to that whole group, and then ends the way the script did — by the same signal (re-raised on itself,
 * so the server reports `exit-signal`) or with the same exit code:
 *
 * - with perl on the host: exact, perl forks the command (`setpgrp` in parent and child) and reads the wait status;
 * - without (busybox userlands): `setsid` (GNU or busybox) starts the command in its own session, and the shell waits.
 *   A POSIX shell cannot tell `exit 128+N` from a death by signal N, so such a status is re-raised as signal N.
 *   Without `setsid` either, the command runs in the session's group, as before.
 *
 * On a terminal (stdin a tty: a pty session, or sudo's `use_pty`) the script runs as it is: the terminal's foreground
 * group is the session's, and a new group would lose the terminal (a read from it would stop the script).
 *
 * Core also runs every sudo'd command this way, on the far side of sudo (`prepare.ts`): sudo passes a signal on to
 * its own command only, so without a group of its own the command's children would outlive a cancel.
 */
import { quote } from "../quote.js";

/** The signals a session may be sent to stop it, forwarded to the command's group. */
const FORWARDED = ["HUP", "INT", "QUIT", "TERM", "USR1", "USR2", "ALRM", "PIPE"];

/**
 * Written without single quotes: it travels inside a single-quoted shell word. Arguments: the caller's
 * `PERL_BADLANG` and whether it was set (perl starts with it at 0, so a locale the host lacks — fish sets one — draws
 * no warning on the command's stderr), then the script.
 */
const PERL_GROUP = [
  "my($b,$h,$c)=@ARGV;if($h){$ENV{PERL_BADLANG}=$b}else{delete $ENV{PERL_BADLANG}}",
  // Handlers before the fork: a signal that comes while the command starts is kept and passed on once the group
  // exists, instead of killing perl by default and leaving the command running.
  "my($p,$q);",
  `for my $s (qw(${FORWARDED.join(" ")})){$SIG{$s}=sub{if($p){kill $s,-$p}else{$q=$s}}}`,
  "my $k=fork;",
  "if(!defined $k){exec{q(/bin/sh)}q(sh),q(-c),$c;exit 127}",
  `if(!$k){$SIG{$_}=q(DEFAULT) for qw(${FORWARDED.join(" ")});setpgrp(0,0);exec{q(/bin/sh)}q(sh),q(-c),$c;exit 127}`,
  "setpgrp($k,$k);$p=$k;",
  "kill $q,-$p if $q;",
  "while(waitpid($p,0)==-1){last unless $!{EINTR}}",
  "my $w=$?;my $s=$w&127;",
  "if($s){$SIG{$_}=q(DEFAULT) for keys %SIG;kill $s,$$;exit 128+$s}",
  "exit $w>>8",
].join("");

const SH_GROUP = [
  // Traps first, so a signal that comes while the command starts is not lost: it is passed on once $p is known.
  "p=; q=",
  ...FORWARDED.map((name) => `trap 'q=${name}; [ -n "$p" ] && kill -s ${name} -- -$p 2>/dev/null' ${name}`),
  "exec 3<&0",
  // An asynchronous list's stdin is /dev/null unless redirected: hand it the session's. Not a group leader, so
  // setsid(1) makes the child one without forking, and $! is the group.
  'setsid /bin/sh -c "$c" <&3 3<&- &',
  "p=$!",
  // The shell's own report of a killed job ("Terminated") is not the command's output.
  "exec 3<&- 2>/dev/null",
  '[ -n "$q" ] && kill -s "$q" -- -$p',
  // A trapped signal ends `wait` early; wait again until the child is really gone.
  'while :; do wait "$p"; s=$?; kill -0 "$p" 2>/dev/null || break; done',
  `if [ "$s" -gt 128 ] && [ "$s" -le 192 ]; then trap - ${FORWARDED.join(" ")}; kill -$((s - 128)) $$; fi`,
  'exit "$s"',
].join("\n");

/** The group script around `word`, a shell word that expands to the script to run. */
function groupScript(word: string): string {
  return [
    `c=${word}`,
    '[ -t 0 ] && exec /bin/sh -c "$c"',
    "if command -v perl >/dev/null 2>&1; then b=${PERL_BADLANG-}; h=${PERL_BADLANG+1}; PERL_BADLANG=0; export PERL_BADLANG; " +
      `exec perl -e ${quote(PERL_GROUP)} -- "$b" "$h" "$c"; fi`,
    `command -v setsid >/dev/null 2>&1 || exec /bin/sh -c "$c"`,
    SH_GROUP,
  ].join("\n");
}

/**
 * `script` (POSIX sh) run in a process group of its own, with the session's terminating signals passed on to it.
 * @example connection.exec(loginShellCommand(inOwnProcessGroup(prepared.command)))
 */
export function inOwnProcessGroup(script: string): string {
  return groupScript(quote(script));
}

/**
 * The same for a script passed as the first argument: `/bin/sh -c OWN_PROCESS_GROUP_OF_ARGUMENT sh '<script>'`. The
 * script is quoted once, where it is an argument (sudo's command line), not a second time inside this one.
 */
export const OWN_PROCESS_GROUP_OF_ARGUMENT = groupScript('"$1"');

/**
 * Run once per connection, without a pty, to learn whether the server makes a session's command a process-group
 * leader (OpenSSH: prints `group`, and its `signal` requests reach the whole group) or not (dropbear: prints `pid`,
 * and a signal reaches only the session's pid, so commands need `inOwnProcessGroup`). The login-shell line `exec`s
 * `/bin/sh`, so `$$` is the session's pid; `kill -s 0 -- -$$` succeeds only when a group with that id exists.
 */
export const SESSION_GROUP_PROBE = "if kill -s 0 -- -$$ 2>/dev/null; then echo group; else echo pid; fi";

/**
 * What `SESSION_GROUP_PROBE` printed: `true` when the session's command leads its own group, `false` when it does
 * not, `undefined` for anything else (a forced command, a shell that printed its own lines).
 */
export function parseSessionGroupProbe(stdout: string): boolean | undefined {
  const answer = stdout.trim();
  if (answer === "group") return true;
  if (answer === "pid") return false;
  return undefined;
}
