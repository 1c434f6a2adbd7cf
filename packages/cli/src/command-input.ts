/**
 * `--stdin` (`tunnel run`, `tunnel script`): this machine's stdin for the command or script on every host. On one host
 * it streams, as `ssh` passes its stdin on: no size limit, read as the command reads it (core reads a stream only once
 * the process has started, so a failed connect is still retried). For several hosts it is read to its end before any
 * host starts, so every host gets the same bytes, and an attempt that is repeated sends them again. It is read only
 * when asked for: a `tunnel run` inside a `while read host; do …; done < hosts` loop must not eat the loop's input, as
 * `ssh` does without `-n`.
 */
import type { Readable } from "node:stream";
import { InterruptedError, UsageError } from "./usage-error.js";

/** The most `--stdin` reads for several hosts: more is a usage error (copy it with `tunnel put` and read the file instead). */
export const STDIN_LIMIT_BYTES = 64 * 1024 * 1024;
export const STDIN_LIMIT_TEXT = "64 MiB";

/** What `--stdin` reads from: `process.stdin` fits. */
export interface InputStream {
  on(event: "data", listener: (chunk: Buffer | string) => void): unknown;
  on(event: "end", listener: () => void): unknown;
  on(event: "error", listener: (error: Error) => void): unknown;
  removeListener(event: "data" | "end" | "error", listener: (...args: never[]) => void): unknown;
  resume(): unknown;
  pause(): unknown;
}

function isInputStream(input: unknown): input is InputStream {
  const stream = input as Partial<InputStream> | null | undefined;
  return (
    typeof stream?.on === "function" && typeof stream.removeListener === "function" && typeof stream.resume === "function" && typeof stream.pause === "function"
  );
}

/**
 * Every byte of `input` up to its end. Rejects with `UsageError` when there is no input, it cannot be read or it
 * holds more than `limit` bytes, and with `InterruptedError` once `signal` aborts (Ctrl-C while reading).
 */
export function readCommandInput(input: unknown, signal?: AbortSignal, limit = STDIN_LIMIT_BYTES): Promise<Buffer> {
  if (!isInputStream(input)) return Promise.reject(new UsageError("--stdin: there is no stdin to read"));
  if (signal?.aborted) return Promise.reject(new InterruptedError());
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const finish = (settle: () => void) => {
      input.removeListener("data", onData);
      input.removeListener("end", onEnd);
      input.removeListener("error", onError);
      signal?.removeEventListener("abort", onAbort);
      input.pause();
      settle();
    };
    const onData = (chunk: Buffer | string) => {
      const bytes = typeof chunk === "string" ? Buffer.from(chunk) : chunk;
      size += bytes.length;
      if (size > limit) {
        finish(() =>
          reject(
            new UsageError(
              `--stdin: more than ${limit === STDIN_LIMIT_BYTES ? STDIN_LIMIT_TEXT : `${limit} bytes`} on stdin; copy it with tunnel put and read the file`,
            ),
          ),
        );
        return;
      }
      chunks.push(bytes);
    };
    const onEnd = () => finish(() => resolve(Buffer.concat(chunks, size)));
    const onError = (error: Error) => finish(() => reject(new UsageError(`--stdin: cannot read stdin: ${error.message}`)));
    const onAbort = () => finish(() => reject(new InterruptedError()));
    input.on("data", onData);
    input.on("end", onEnd);
    input.on("error", onError);
    signal?.addEventListener("abort", onAbort, { once: true });
    input.resume();
  });
}

/** What `--stdin` gives the hosts, and how to let go of this machine's stdin afterwards. */
export interface CommandInput {
  /** The stream itself for one host; every byte, read to the end, for several. */
  readonly stdin: Buffer | Readable;
  /** Stop reading (a command that ended before its input did): the process can then exit. */
  release(): void;
}

/** `--stdin` for `hostCount` hosts: the stream for one host (when `input` can be piped), else all of it read first. */
export async function commandInput(input: unknown, hostCount: number, signal?: AbortSignal): Promise<CommandInput> {
  const stream = input as Partial<Readable> | null | undefined;
  if (hostCount === 1 && isInputStream(input) && typeof stream?.pipe === "function" && typeof stream.unpipe === "function") {
    const readable = input as Readable;
    return {
      stdin: readable,
      release: () => {
        readable.unpipe();
        readable.pause();
      },
    };
  }
  return { stdin: await readCommandInput(input, signal), release: () => undefined };
}
