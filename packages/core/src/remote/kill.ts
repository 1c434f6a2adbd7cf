/**
 * Remote snippets that stop processes from a session of their own (beside the one that runs the command). Each is a
 * POSIX sh script for `SpawnRequest.command` (or `prepareCommand`'s `cmd`) that always exits 0: a process already
 * gone is what was asked for. The tools they use (`kill`, `pgrep`, `pkill`, `ps`, `sort`) behave alike in GNU
 * procps, busybox and BSD for the options used here.
 */
import { quote } from "../quote.js";

/** Signal names a snippet accepts: `TERM`, `KILL`, `USR1`, … (no `SIG` prefix). */
const SIGNAL_NAME = /^[A-Z][A-Z0-9]{0,9}$/;

function signalWord(name: string): string {
  if (!SIGNAL_NAME.test(name)) throw new TypeError(`not a signal name: ${JSON.stringify(name)}`);
  return name;
}

/**
 * Send `name` to the process group `pgid`, or to the process of that pid when it leads no group.
 * @example killGroupScript("TERM", 4242) // => "kill -s TERM -- -4242 2>/dev/null || kill -s TERM 4242 2>/dev/null; exit 0"
 */
export function killGroupScript(name: string, pgid: number): string {
  if (!Number.isSafeInteger(pgid) || pgid <= 1) throw new TypeError(`not a process group: ${pgid}`);
  const signal = signalWord(name);
  return `kill -s ${signal} -- -${pgid} 2>/dev/null || kill -s ${signal} ${pgid} 2>/dev/null; exit 0`;
}

/**
 * Sends `name` to the process groups of the sudo command whose ready token carries `nonce` (see `prepare.ts`): the
 * group of its `sudo` process (found by the token in its command line; the bracket keeps the killer from matching
 * itself) and those of sudo's children (sudo's `use_pty` puts the command in a session of its own). Run it as the user
 * the command runs as (through sudo); the executor sends TERM, then KILL, through `escalateKill`.
 */
export function killSudoGroupsScript(nonce: string, name: string): string {
  if (!/^[A-Za-z0-9]+$/.test(nonce)) throw new TypeError(`not a nonce: ${JSON.stringify(nonce)}`);
  const signal = signalWord(name);
  const pattern = quote(`^sudo .*[t]unnel-ready-${nonce}`);
  return (
    `s=$(pgrep -d, -f ${pattern}); [ -n "$s" ] || exit 0; c=$(pgrep -d, -P "$s"); ` +
    `groups=$(ps -o pgid= -p "$s\${c:+,$c}" | sort -u); for g in $groups; do kill -s ${signal} -- "-$g"; done 2>/dev/null; exit 0`
  );
}

/**
 * KILLs every process whose command line names `token` as `tunnel-<kind>.<token>` (a script folder, a temp file),
 * e.g. what a session whose link was cut left running. The bracket keeps the pattern from matching the shell that
 * runs it, and the name itself is kept out of that command line.
 */
export function killNamingScript(kind: string, token: string): string {
  if (!/^[a-z]+$/.test(kind) || !/^[A-Za-z0-9]+$/.test(token)) throw new TypeError(`not a name: ${kind}.${token}`);
  return `pkill -KILL -f -- ${quote(`[t]unnel-${kind}[.]${token}`)} 2>/dev/null; exit 0`;
}
