/**
 * The session's stdin as a control path: frames the exit waiter (`exit-waiter.ts`) reads, one per line header.
 *
 * A ControlMaster passes no `signal` request from its clients, and a server with one session per connection
 * (`MaxSessions 1`) refuses the second exec that would carry a kill. What a mux client does carry is its stdin, so
 * the command's stdin, its end and the signals for its group all travel there:
 *
 * - `d<length>\n<bytes>` (perl waiter) or `d<printf escapes>\n` (sh waiter): bytes for the command's stdin;
 * - `e\n`: the command's stdin ends (EOF), the channel stays open for signals;
 * - `s<NAME>\n`: send signal NAME (e.g. `TERM`) to the command's process group;
 * - `q\n`: the client is done (it has the exit report): the end of the channel's stdin that follows is not a loss;
 * - `c<length>\n<bytes>` (perl) or `c<printf escapes>\n` (sh): the command itself, first of all, for a waiter started
 *   ahead of its command (`commandFrame`).
 *
 * The end of the channel's stdin without `q` means the channel closed (client killed, connection lost): the waiter
 * stops the command. Bytes pass exactly: the perl waiter copies counted bytes, the sh waiter's `printf` decodes
 * octal escapes (it reads lines, so every byte but a few plain ones is escaped, including newlines).
 */
import { Transform, type TransformCallback } from "node:stream";

export type FrameWaiter = "perl" | "sh";

/** The largest data frame for the perl waiter: one read of the waiter takes it whole. */
const PERL_FRAME_BYTES = 64 * 1024;
/** The largest data frame for the sh waiter, in bytes before escaping (a line of at most 4x that). */
const SH_FRAME_BYTES = 1024;

/** Bytes a sh waiter's data line carries as they are; every other byte becomes `\ooo`. `-` never leads a format. */
const PLAIN = new Uint8Array(256);
for (const character of "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789 /._=+,:@") {
  PLAIN[character.charCodeAt(0)] = 1;
}
const ESCAPES = Array.from({ length: 256 }, (_, byte) => Buffer.from(`\\${byte.toString(8).padStart(3, "0")}`, "latin1"));

/** One data frame for `waiter` (a chunk of at most the waiter's frame size). */
function dataFrame(chunk: Buffer, waiter: FrameWaiter, kind = "d"): Buffer {
  if (waiter === "perl") return Buffer.concat([Buffer.from(`${kind}${chunk.length}\n`, "latin1"), chunk]);
  const parts: Buffer[] = [Buffer.from(kind, "latin1")];
  let plainFrom = 0;
  for (let at = 0; at < chunk.length; at++) {
    const byte = chunk[at]!;
    if (PLAIN[byte] === 1) continue;
    if (at > plainFrom) parts.push(chunk.subarray(plainFrom, at));
    parts.push(ESCAPES[byte]!);
    plainFrom = at + 1;
  }
  if (chunk.length > plainFrom) parts.push(chunk.subarray(plainFrom));
  parts.push(Buffer.from("\n", "latin1"));
  return Buffer.concat(parts);
}

/** Frames the command's stdin: data frames for every chunk written, the end-of-input frame when it ends. */
export class StdinFramer extends Transform {
  private readonly frameBytes: number;

  constructor(private readonly waiter: FrameWaiter) {
    super();
    this.frameBytes = waiter === "perl" ? PERL_FRAME_BYTES : SH_FRAME_BYTES;
  }

  override _transform(chunk: Buffer | string, encoding: BufferEncoding, callback: TransformCallback): void {
    const bytes = typeof chunk === "string" ? Buffer.from(chunk, encoding) : chunk;
    for (let at = 0; at < bytes.length; at += this.frameBytes) {
      this.push(dataFrame(bytes.subarray(at, at + this.frameBytes), this.waiter));
    }
    callback();
  }

  override _flush(callback: TransformCallback): void {
    callback(null, STDIN_END_FRAME);
  }
}

export const STDIN_END_FRAME = Buffer.from("e\n", "latin1");
export const STDIN_DONE_FRAME = Buffer.from("q\n", "latin1");

/**
 * The frame that hands a waiter started without its command (`ExitWaiterOptions.commandFromStdin`) the command to
 * run: `c<length>\n<bytes>` for perl, `c<printf escapes>\n` for sh. It comes first, before any other frame.
 */
export function commandFrame(command: string, waiter: FrameWaiter): Buffer {
  return dataFrame(Buffer.from(command, "utf8"), waiter, "c");
}

/** The frame asking the waiter to send `name` (e.g. `TERM`, no `SIG` prefix) to the group. */
export function stdinSignalFrame(name: string): Buffer {
  if (!/^[A-Z0-9]+$/.test(name)) throw new TypeError(`not a signal name: ${name}`);
  return Buffer.from(`s${name}\n`, "latin1");
}
