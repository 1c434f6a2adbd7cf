/**
 * One file's bytes over an exec channel, for servers without the SFTP subsystem (a locked-down sshd, some embedded
 * devices): `cat > path` fed from the local file (upload), `cat` of the remote file into the local one (download).
 * The streams are piped with backpressure, so memory stays flat; atomic renames, modes, owners and verification
 * stay in core as for SFTP.
 */
import { createReadStream, createWriteStream } from "node:fs";
import { stat } from "node:fs/promises";
import { Transform, type TransformCallback } from "node:stream";
import { pipeline } from "node:stream/promises";
import {
  AbortError,
  TransferError,
  TunnelError,
  type DownloadRequest,
  type Progress,
  type RemoteProcess,
  type SpawnRequest,
  type Target,
  type UploadRequest,
} from "@tunnel-sh/core";
import { streamDownloadScript, streamUploadScript } from "@tunnel-sh/core/internal";

export interface ExecTransferHost {
  readonly target: Target;
  spawn(request: SpawnRequest): RemoteProcess;
}

/** Counts the bytes passing through and reports progress at most every `intervalMs`. */
class Counter extends Transform {
  bytes = 0;
  private lastAt = 0;
  private readonly startedAt = performance.now();

  constructor(
    private readonly total: number | undefined,
    private readonly onProgress: ((progress: Progress) => void) | undefined,
    private readonly intervalMs = 100,
    private readonly onData?: (chunk: Uint8Array) => void,
  ) {
    super();
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.bytes += chunk.length;
    this.onData?.(chunk);
    const now = performance.now();
    if (this.onProgress && now - this.lastAt >= this.intervalMs && (this.total === undefined || this.bytes < this.total)) {
      this.lastAt = now;
      this.report(now);
    }
    callback(null, chunk);
  }

  report(now = performance.now()): void {
    const seconds = Math.max((now - this.startedAt) / 1000, 1e-3);
    try {
      this.onProgress?.({ bytes: this.bytes, total: this.total, rate: this.bytes / seconds });
    } catch {
      // A failing progress listener must not break the transfer.
    }
  }
}

async function collect(stream: NodeJS.ReadableStream, limit = 8192): Promise<string> {
  let text = "";
  for await (const chunk of stream) if (text.length < limit) text += String(chunk);
  return text.trim();
}

function failure(error: unknown, target: Target, what: string): TunnelError {
  if (TunnelError.is(error)) return error;
  return new TransferError(`${what}: ${error instanceof Error ? error.message : String(error)}`, { target, cause: error });
}

const describe = (status: { exitCode: number | null; signal: string | null }) =>
  `remote cat ${status.signal ? `was killed by ${status.signal}` : `exited with ${status.exitCode}`}`;

export async function execUpload(host: ExecTransferHost, request: UploadRequest): Promise<void> {
  const target = host.target;
  if (request.signal?.aborted) throw new AbortError("the transfer was aborted", { phase: "transfer", target });
  const what = `upload to ${request.remotePath} failed`;
  let total: number;
  try {
    total = (await stat(request.localPath)).size;
  } catch (error) {
    throw failure(error, target, `cannot read ${request.localPath}`);
  }
  const remote = host.spawn({ command: streamUploadScript(request.remotePath, request.mode), ...(request.signal ? { signal: request.signal } : {}) });
  remote.stdout.resume();
  const stderr = collect(remote.stderr);
  const counter = new Counter(total, request.onProgress, 100, request.onData);
  try {
    await remote.started;
    const sent = pipeline(createReadStream(request.localPath), counter, remote.stdin);
    const [status] = await Promise.all([remote.exit, sent]);
    if (status.exitCode !== 0) throw new TransferError(`${what}: ${(await stderr) || describe(status)}`, { target });
    if (counter.bytes !== total) throw new TransferError(`${request.localPath} changed size during the upload`, { target });
    counter.report();
  } catch (error) {
    throw failure(error, target, what);
  }
}

export async function execDownload(host: ExecTransferHost, request: DownloadRequest): Promise<void> {
  const target = host.target;
  if (request.signal?.aborted) throw new AbortError("the transfer was aborted", { phase: "transfer", target });
  const what = `download of ${request.remotePath} failed`;
  // The size goes first on stderr (one line), then the bytes on stdout.
  const remote = host.spawn({ command: streamDownloadScript(request.remotePath), ...(request.signal ? { signal: request.signal } : {}) });
  remote.stdin.end();
  let sizeLine: string | undefined;
  let buffered = "";
  let stderrText = "";
  remote.stderr.on("data", (chunk: Buffer) => {
    if (sizeLine !== undefined) {
      if (stderrText.length < 8192) stderrText += chunk.toString();
      return;
    }
    buffered += chunk.toString();
    const newline = buffered.indexOf("\n");
    if (newline !== -1) {
      sizeLine = buffered.slice(0, newline);
      stderrText += buffered.slice(newline + 1);
    }
  });
  const counter = new Counter(undefined, request.onProgress, 100, request.onData);
  try {
    await remote.started;
    const received = pipeline(remote.stdout, counter, createWriteStream(request.localPath));
    const [status] = await Promise.all([remote.exit, received]);
    if (status.exitCode !== 0) throw new TransferError(`${what}: ${stderrText.trim() || buffered.trim() || describe(status)}`, { target });
    const total = Number(sizeLine);
    if (sizeLine === undefined || !Number.isSafeInteger(total) || counter.bytes !== total) {
      throw new TransferError(`${what}: got ${counter.bytes} of ${sizeLine ?? "an unknown number of"} bytes`, { target });
    }
    counter.report();
  } catch (error) {
    throw failure(error, target, what);
  }
}
