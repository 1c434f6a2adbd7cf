/**
 * A `FakeTransport` transfer reply that copies files on this machine, as a transport moves them over SSH.
 */
import { createReadStream, createWriteStream } from "node:fs";
import { stat } from "node:fs/promises";
import { pipeline } from "node:stream/promises";
import { AbortError, TransferError, type UploadRequest } from "@tunnel-sh/core";
import type { TransferReplyFunction } from "./fake-transport.js";

/**
 * Copies files on this machine as a transport moves them: `upload` copies `localPath` to `remotePath`, `download`
 * the other way. The destination is created (with the upload's `mode`, through the umask) or truncated (keeping its
 * own mode); progress is reported per chunk and last at exactly the size; an upload hands each chunk it reads to
 * `onData`; a failure is a `TransferError`, an abort an `AbortError`.
 * @example new FakeTransport({ upload: localFileCopy, download: localFileCopy })
 */
export const localFileCopy: TransferReplyFunction = async (request, connection, direction) => {
  const [from, to] = direction === "upload" ? [request.localPath, request.remotePath] : [request.remotePath, request.localPath];
  const target = connection.target;
  const mode = direction === "upload" ? (request as UploadRequest).mode : undefined;
  // An upload hands the bytes it reads to `onData`, as the transports do; a download leaves the local file to be hashed.
  const onData = direction === "upload" ? (request as UploadRequest).onData : undefined;
  try {
    const total = (await stat(from)).size;
    let bytes = 0;
    const startedAt = performance.now();
    const report = () => {
      const seconds = Math.max((performance.now() - startedAt) / 1000, 1e-3);
      request.onProgress?.({ bytes, total, rate: bytes / seconds });
    };
    await pipeline(
      createReadStream(from),
      async function* (source: AsyncIterable<Buffer>) {
        for await (const chunk of source) {
          bytes += chunk.length;
          onData?.(chunk);
          if (bytes < total) report();
          yield chunk;
        }
      },
      createWriteStream(to, mode !== undefined ? { mode } : {}),
      ...(request.signal ? [{ signal: request.signal }] : []),
    );
    report();
  } catch (error) {
    if (request.signal?.aborted) throw new AbortError(undefined, { phase: "transfer", target });
    const code = (error as NodeJS.ErrnoException).code;
    throw new TransferError(`${direction} from ${from} to ${to} failed${code ? ` (${code})` : ""}`, { target, cause: error });
  }
  return {};
};
