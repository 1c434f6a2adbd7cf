/**
 * The sha256 of the local side of a verified transfer, from the bytes the transport hands over while they move
 * (`UploadRequest.onData` / `DownloadRequest.onData`), so neither direction reads its file a second time.
 */
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { stat } from "node:fs/promises";

function sha256OfFile(path: string, signal: AbortSignal): Promise<string> {
  return new Promise((resolve, reject) => {
    const hash = createHash("sha256");
    const stream = createReadStream(path, { signal });
    stream.on("data", (chunk) => hash.update(chunk));
    stream.on("error", reject);
    stream.on("end", () => resolve(hash.digest("hex")));
  });
}

/**
 * The sha256 of the bytes handed over. When they were not the whole file (a transport that does not show the bytes,
 * or stopped part way), the file itself is read instead.
 */
export class StreamHash {
  readonly #hash = createHash("sha256");
  #bytes = 0;

  update(chunk: Uint8Array): void {
    this.#hash.update(chunk);
    this.#bytes += chunk.byteLength;
  }

  async digestOf(path: string, signal: AbortSignal): Promise<string> {
    if (this.#bytes === (await stat(path)).size) return this.#hash.digest("hex");
    return sha256OfFile(path, signal);
  }
}
