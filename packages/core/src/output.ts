/**
 * Collects one output stream of a remote process: decodes UTF-8 safely across chunk boundaries, keeps at most
 * `maxBytes` of it in memory (then sets `truncated`), and hands every decoded chunk to a listener as it arrives —
 * the listener sees everything, the collected text is capped.
 */
import { StringDecoder } from "node:string_decoder";

export class OutputCollector {
  readonly #maxBytes: number;
  readonly #listener: ((text: string) => void) | undefined;
  // Made on first use: most streams of most commands carry nothing at all.
  #liveDecoder: StringDecoder | undefined;
  #keptDecoder: StringDecoder | undefined;
  readonly #kept: string[] = [];
  #keptBytes = 0;
  #truncated = false;
  #ended = false;

  constructor(maxBytes: number, listener?: (text: string) => void) {
    this.#maxBytes = maxBytes;
    this.#listener = listener;
  }

  /** Whether bytes past the cap were dropped from the collected text. */
  get truncated(): boolean {
    return this.#truncated;
  }

  /** Bytes kept so far. */
  get bytes(): number {
    return this.#keptBytes;
  }

  write(chunk: Buffer): void {
    if (this.#ended || chunk.length === 0) return;
    if (this.#listener) {
      const text = (this.#liveDecoder ??= new StringDecoder("utf8")).write(chunk);
      if (text) this.#listener(text);
    }
    const room = this.#maxBytes - this.#keptBytes;
    if (room <= 0) {
      if (chunk.length > 0) this.#truncated = true;
      return;
    }
    const kept = chunk.length <= room ? chunk : chunk.subarray(0, room);
    if (kept.length < chunk.length) this.#truncated = true;
    this.#keptBytes += kept.length;
    const text = (this.#keptDecoder ??= new StringDecoder("utf8")).write(kept);
    if (text) this.#kept.push(text);
  }

  /** Flush the decoders. A multi-byte character cut by the cap is dropped rather than turned into U+FFFD. */
  end(): void {
    if (this.#ended) return;
    this.#ended = true;
    if (this.#listener && this.#liveDecoder) {
      const text = this.#liveDecoder.end();
      if (text) this.#listener(text);
    }
    if (!this.#truncated && this.#keptDecoder) {
      const text = this.#keptDecoder.end();
      if (text) this.#kept.push(text);
    }
  }

  /** The collected text. */
  text(): string {
    return this.#kept.length === 1 ? (this.#kept[0] as string) : this.#kept.join("");
  }
}
