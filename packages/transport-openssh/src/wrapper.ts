/**
 * The local side of the exit waiter (core's `exitWaiterScript`): a nonce for its report lines, and the filter that
 * takes them out of the command's stderr (or the pty's output).
 */
import { randomBytes } from "node:crypto";
import { Transform, type TransformCallback } from "node:stream";
import { parseWaiterReport, type WaiterReport } from "@tunnel-sh/core/internal";

export function newNonce(): string {
  return `tunnel${randomBytes(12).toString("hex")}`;
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
    /** The nonce of the report lines taken out. */
    readonly nonce: string,
    private readonly onMarker: (marker: WaiterReport) => void,
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
      const marker = parseWaiterReport(body);
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
