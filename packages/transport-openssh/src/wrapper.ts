/**
 * The remote side of an exec: a few lines of POSIX sh around the prepared command.
 *
 * The ssh client exits 255 for transport errors, for a remote `exit 255` and for a remote death by signal, and
 * through a ControlMaster it never learns a signal's name. So the session command is a small wrapper, run by the
 * login shell, that
 * 1. reports its pid on stderr (sshd makes the session command a process-group leader, so this is the group to
 *    signal on cancel) — this also proves the command started;
 * 2. runs the prepared command as a child, `"$SHELL" -c <command>`, exactly as sshd would have run it
 *    (so `$$` inside is the command's own shell);
 * 3. reports the child's status, with the signal name from the remote `kill -l` when it is above 128,
 *    and exits with it.
 * The wrapper traps the catchable signals (handlers reset to default in the child), so a signal sent to the
 * whole group stops the command while the wrapper survives to report how it ended. Its own job-control chatter
 * ("Terminated", "Killed") goes to /dev/null; the command keeps the real stderr.
 * Both report lines carry a random nonce and are stripped from the stream by `MarkerFilter`.
 */
import { randomBytes } from "node:crypto";
import { Transform, type TransformCallback } from "node:stream";
import { quote } from "@tunnel/core";

export function newNonce(): string {
  return `tunnel${randomBytes(12).toString("hex")}`;
}

/** The session command for `command`. `$SHELL` is set by sshd to the user's login shell. */
export function wrapCommand(command: string, nonce: string): string {
  return [
    "trap : HUP INT QUIT PIPE ALRM TERM USR1 USR2",
    `printf '${nonce}:pid:%s\\n' "$$" >&2`,
    `exec 3>&2 2>/dev/null`,
    // A subshell that execs: the shell's job report ("Killed") is printed outside the child's redirections.
    `(exec 2>&3 3>&-; exec "\${SHELL:-/bin/sh}" -c ${quote(command)})`,
    "s=$?",
    "n=",
    'if [ "$s" -gt 128 ] && [ "$s" -le 192 ]; then n=$(kill -l "$s" 2>/dev/null) || n=; fi',
    `printf '${nonce}:exit:%s:%s\\n' "$s" "$n" >&3`,
    'exit "$s"',
  ].join("; ");
}

export type Marker = { readonly kind: "pid"; readonly pid: number } | { readonly kind: "exit"; readonly status: number; readonly signal: string | null };

/** Parse the part of a marker line after `<nonce>:`. */
export function parseMarker(body: string): Marker | undefined {
  const pid = /^pid:(\d+)$/.exec(body);
  if (pid) return { kind: "pid", pid: Number(pid[1]) };
  const exit = /^exit:(\d+):([A-Za-z0-9+]*)$/.exec(body);
  if (exit) {
    const name = exit[2] ? exit[2].toUpperCase().replace(/^SIG/, "") : "";
    return { kind: "exit", status: Number(exit[1]), signal: name && /^[A-Z]/.test(name) ? `SIG${name}` : null };
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
