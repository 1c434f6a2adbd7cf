/**
 * Stripping tokens out of a byte stream: the start token a prepared command prints first, and sudo's prompt and ready
 * tokens (see `run.ts`). A token may arrive split across chunks; bytes that could begin one are held back until the
 * next chunk tells.
 */
/** Held back nothing (never written to). */
const NOTHING = Buffer.alloc(0);

/**
 * Removes tokens from a byte stream, calling `onToken` for each, until `onToken` reports that the exchange is over;
 * from then on bytes pass through untouched. Holds back a tail that might be the start of a token split across chunks.
 */
export class TokenFilter {
  readonly #tokens: readonly Buffer[];
  readonly #onToken: (token: string) => "continue" | "done";
  #held: Buffer = NOTHING;
  #done = false;

  constructor(tokens: readonly string[], onToken: (token: string) => "continue" | "done") {
    this.#tokens = tokens.map((token) => Buffer.from(token, "utf8"));
    this.#onToken = onToken;
  }

  /** Stop scanning; everything passes through from now on. */
  finish(): void {
    this.#done = true;
  }

  write(chunk: Buffer): Buffer {
    let buffer = this.#held.length > 0 ? Buffer.concat([this.#held, chunk]) : chunk;
    this.#held = NOTHING;
    if (this.#done) return buffer;
    const out: Buffer[] = [];
    while (!this.#done) {
      let index = -1;
      let found: Buffer | undefined;
      for (const token of this.#tokens) {
        const at = buffer.indexOf(token);
        if (at !== -1 && (index === -1 || at < index)) {
          index = at;
          found = token;
        }
      }
      if (!found) break;
      out.push(buffer.subarray(0, index));
      buffer = buffer.subarray(index + found.length);
      if (this.#onToken(found.toString("utf8")) === "done") this.#done = true;
    }
    const keep = this.#done ? 0 : this.#partialTokenLength(buffer);
    out.push(buffer.subarray(0, buffer.length - keep));
    this.#held = keep > 0 ? Buffer.from(buffer.subarray(buffer.length - keep)) : NOTHING;
    return out.length === 1 ? (out[0] as Buffer) : Buffer.concat(out);
  }

  /** Whatever is still held back (the stream ended). */
  flush(): Buffer {
    const held = this.#held;
    this.#held = NOTHING;
    return held;
  }

  /** Length of the longest suffix of `buffer` that is a proper prefix of a token. */
  #partialTokenLength(buffer: Buffer): number {
    let longest = 0;
    for (const token of this.#tokens) {
      const max = Math.min(token.length - 1, buffer.length);
      for (let length = max; length > longest; length--) {
        if (buffer.subarray(buffer.length - length).equals(token.subarray(0, length))) {
          longest = length;
          break;
        }
      }
    }
    return longest;
  }
}
