/**
 * One file's bytes through the master, as a streamed `cat` over an exec: `cat > file` for uploads, `cat file` for
 * downloads. Measured against `scp`/`sftp` through the same master (see the README), the exec stream was as fast,
 * needs no subsystem, and reuses the exec's cancellation (the remote `cat` is signalled like any command).
 * Memory stays flat: Node streams apply back-pressure end to end.
 */
import { createReadStream, createWriteStream } from "node:fs";
import { stat } from "node:fs/promises";
import { Transform, type TransformCallback } from "node:stream";
import { pipeline } from "node:stream/promises";
import {
  AbortError,
  TransferError,
  TunnelError,
  quote,
  type Connection,
  type DownloadRequest,
  type Progress,
  type Target,
  type UploadRequest,
} from "@tunnel/core";

const PROGRESS_INTERVAL_MS = 100;

/** Counts bytes and reports progress at most every 100 ms; the final report (exactly at the total) is the caller's. */
class ProgressMeter extends Transform {
  bytes = 0;
  private readonly startedAt = performance.now();
  private lastReport = 0;
  constructor(
    public total: number | undefined,
    private readonly onProgress: ((progress: Progress) => void) | undefined,
  ) {
    super();
  }
  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.bytes += chunk.length;
    const now = performance.now();
    if (this.onProgress && now - this.lastReport >= PROGRESS_INTERVAL_MS && (this.total === undefined || this.bytes < this.total)) {
      this.lastReport = now;
      this.report(this.bytes);
    }
    callback(null, chunk);
  }
  report(bytes: number): void {
    const seconds = Math.max((performance.now() - this.startedAt) / 1000, 1e-3);
    this.onProgress?.({ bytes, total: this.total, rate: bytes / seconds });
  }
}

function validPath(field: string, value: string): void {
  if (typeof value !== "string" || value.length === 0 || value.includes("\0")) {
    throw new TransferError(`${field} must be a non-empty path without NUL`);
  }
}

async function collect(stream: NodeJS.ReadableStream, limit = 8192): Promise<string> {
  let text = "";
  for await (const chunk of stream) {
    if (text.length < limit) text += chunk.toString();
  }
  return text.trim();
}

function wrapFailure(error: unknown, target: Target, what: string): TunnelError {
  if (TunnelError.is(error)) {
    if (error.code === "TRANSFER" || error.code === "CONNECTION_LOST" || error.code === "ABORTED" || error.phase === "connect") return error;
    if (error.code === "CHANNEL") return error;
    return new TransferError(`${what}: ${error.message}`, { target, cause: error, retryable: error.retryable });
  }
  const message = error instanceof Error ? error.message : String(error);
  return new TransferError(`${what}: ${message}`, { target, cause: error });
}

export async function uploadFile(connection: Connection, request: UploadRequest): Promise<void> {
  const target = connection.target;
  if (request.signal?.aborted) throw new AbortError(undefined, { phase: "transfer", target });
  validPath("localPath", request.localPath);
  validPath("remotePath", request.remotePath);
  if (request.mode !== undefined && (!Number.isInteger(request.mode) || request.mode < 0 || request.mode > 0o7777)) {
    throw new TransferError("mode must be an integer from 0 to 0o7777", { target });
  }
  let total: number;
  try {
    const info = await stat(request.localPath);
    if (!info.isFile()) throw new Error(`${request.localPath} is not a regular file`);
    total = info.size;
  } catch (error) {
    throw new TransferError(`cannot read ${request.localPath}: ${error instanceof Error ? error.message : String(error)}`, { target, cause: error });
  }
  // A new file gets `mode` (through umask, like an SFTP open with attributes); an existing one keeps its own.
  const umask = request.mode === undefined ? "" : `umask ${(~request.mode & 0o777).toString(8).padStart(3, "0")} && `;
  const command = `${umask}cat > ${quote(request.remotePath)}`;
  const process = connection.spawn({ command, ...(request.signal ? { signal: request.signal } : {}) });
  process.stdout.resume();
  const stderrText = collect(process.stderr);
  const meter = new ProgressMeter(total, request.onProgress);
  try {
    await process.started;
    const source = createReadStream(request.localPath, { highWaterMark: 256 * 1024 });
    const sending = pipeline(source, meter, process.stdin).catch((error: unknown) => error);
    const status = await process.exit;
    if (status.exitCode !== 0) source.destroy();
    const sendError = await sending;
    if (status.exitCode !== 0) {
      throw new TransferError(
        `upload to ${request.remotePath} failed: ${(await stderrText) || `remote cat ${status.signal ? `was killed by ${status.signal}` : `exited with ${status.exitCode}`}`}`,
        { target },
      );
    }
    if (sendError && meter.bytes !== total) {
      throw new TransferError(`upload to ${request.remotePath} failed while sending: ${String(sendError)}`, { target, cause: sendError });
    }
    if (meter.bytes !== total) throw new TransferError(`${request.localPath} changed size during the upload`, { target });
    meter.report(total);
  } catch (error) {
    throw wrapFailure(error, target, `upload to ${request.remotePath} failed`);
  }
}

export async function downloadFile(connection: Connection, request: DownloadRequest): Promise<void> {
  const target = connection.target;
  if (request.signal?.aborted) throw new AbortError(undefined, { phase: "transfer", target });
  validPath("localPath", request.localPath);
  validPath("remotePath", request.remotePath);
  // The size goes first on stderr (one line), then the bytes on stdout. `wc -c` gets its own open file: on a shared
  // one it may seek to the end (GNU wc does for large regular files), leaving nothing for `cat`.
  const path = quote(request.remotePath);
  const command = `if [ ! -f ${path} ]; then if [ -e ${path} ]; then echo "not a regular file: "${path} >&2; else echo "no such file: "${path} >&2; fi; exit 2; fi; exec 0<${path} || exit 2; printf '%s\\n' "$(wc -c < ${path} | tr -d ' ')" >&2 && exec cat`;
  const process = connection.spawn({ command, ...(request.signal ? { signal: request.signal } : {}) });
  process.stdin.end();
  let total: number | undefined;
  let sizeLine = "";
  let stderrText = "";
  process.stderr.on("data", (chunk: Buffer) => {
    if (total === undefined && sizeLine.length < 64) {
      sizeLine += chunk.toString();
      const newline = sizeLine.indexOf("\n");
      if (newline !== -1) {
        const parsed = Number(sizeLine.slice(0, newline));
        if (Number.isSafeInteger(parsed)) {
          total = parsed;
          meter.total = parsed;
        }
        else stderrText += sizeLine;
        stderrText += sizeLine.slice(newline + 1);
      }
    } else if (stderrText.length < 8192) {
      stderrText += chunk.toString();
    }
  });
  const meter = new ProgressMeter(undefined, request.onProgress);
  try {
    await process.started;
    const sink = createWriteStream(request.localPath);
    const opened = new Promise<void>((resolve, reject) => {
      sink.once("open", () => resolve());
      sink.once("error", reject);
    });
    const receiving = pipeline(process.stdout, meter, sink).catch((error: unknown) => error);
    await opened.catch((error: unknown) => {
      void process.kill("SIGTERM");
      throw new TransferError(`cannot write ${request.localPath}: ${error instanceof Error ? error.message : String(error)}`, { target, cause: error });
    });
    const status = await process.exit;
    const receiveError = await receiving;
    if (status.exitCode !== 0) {
      throw new TransferError(
        `download of ${request.remotePath} failed: ${stderrText.trim() || sizeLine.trim() || `remote cat ${status.signal ? `was killed by ${status.signal}` : `exited with ${status.exitCode}`}`}`,
        { target },
      );
    }
    if (receiveError) throw new TransferError(`download of ${request.remotePath} failed while writing: ${String(receiveError)}`, { target, cause: receiveError });
    if (total !== undefined && meter.bytes !== total) {
      throw new TransferError(`download of ${request.remotePath} got ${meter.bytes} of ${total} bytes`, { target });
    }
    meter.total = meter.bytes;
    meter.report(meter.bytes);
  } catch (error) {
    process.stdout.resume();
    throw wrapFailure(error, target, `download of ${request.remotePath} failed`);
  }
}
