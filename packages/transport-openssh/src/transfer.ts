/**
 * One file's bytes through the master, as `cat` over an exec whose stdin (upload) or stdout (download) is the local
 * file itself: the mux client hands its standard descriptors to the ControlMaster, so the master reads the file
 * straight into the channel (or writes the channel straight into the file) and the bytes never pass through Node
 * or an extra process. Measured against `scp` and `sftp -b` through the same master and against the previous
 * Node-piped `cat` (see the README), this was the fastest; memory is flat by construction (no buffer of ours holds
 * file data), and the remote `cat` is cancelled like any command.
 *
 * Progress: downloads poll the local file's size; uploads poll the file offset the master has read to
 * (`/proc/self/fdinfo`, shared by our descriptor and the master's copy). Where `/proc` is missing, an upload reports
 * only its start and its end. The bytes for `onData` are read right behind the master, from the page cache: behind
 * its writes for a download, behind its reads for an upload.
 */
import { open, readFile, type FileHandle } from "node:fs/promises";
import {
  AbortError,
  ChannelError,
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
import type { ProcessFiles } from "./remote-process.js";

const PROGRESS_INTERVAL_MS = 100;

/** What a transfer needs from its connection. */
export interface TransferHost {
  readonly target: Target;
  spawnWithFiles(request: SpawnRequest, files: ProcessFiles): RemoteProcess;
}

/**
 * Polls `read()` for the bytes moved and reports progress at most every 100 ms, only below a known total: the final
 * report, exactly at the total, is `finish()`'s.
 */
class ProgressPoller {
  private readonly startedAt = performance.now();
  private timer: NodeJS.Timeout | undefined;
  private polling = false;
  private last = -1;
  total: number | undefined;

  constructor(
    private readonly onProgress: ((progress: Progress) => void) | undefined,
    private readonly read: () => Promise<number | undefined>,
  ) {}

  start(): void {
    if (!this.onProgress) return;
    void this.poll();
    this.timer = setInterval(() => void this.poll(), PROGRESS_INTERVAL_MS);
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  finish(bytes: number): void {
    this.stop();
    this.total = bytes;
    this.report(bytes);
  }

  private async poll(): Promise<void> {
    if (this.polling) return;
    this.polling = true;
    try {
      const bytes = await this.read();
      if (this.timer === undefined || bytes === undefined || bytes < this.last) return;
      // Unknown total (a download before its size line): nothing worth reporting yet.
      if (this.total === undefined || bytes >= this.total) return;
      this.last = bytes;
      this.report(bytes);
    } catch {
      // the file was closed under the poll: the transfer is over
    } finally {
      this.polling = false;
    }
  }

  private report(bytes: number): void {
    const seconds = Math.max((performance.now() - this.startedAt) / 1000, 1e-3);
    this.onProgress?.({ bytes, total: this.total, rate: bytes / seconds });
  }
}

/**
 * Reads a download's file behind the master as it grows, handing the bytes to `DownloadRequest.onData` (the master
 * writes the file itself, in order, so every byte below the file's size is final). A read failure only stops the
 * handing over: core then hashes the finished file.
 */
class FileFollower {
  private finished = false;
  private wake: (() => void) | undefined;
  readonly done: Promise<void>;

  constructor(path: string, onData: (chunk: Uint8Array) => void) {
    this.done = this.follow(path, onData).catch(() => undefined);
  }

  /** The file is complete: read what is left and stop. */
  finish(): Promise<void> {
    this.finished = true;
    this.wake?.();
    return this.done;
  }

  private async follow(path: string, onData: (chunk: Uint8Array) => void): Promise<void> {
    const file = await open(path, "r");
    try {
      const buffer = Buffer.allocUnsafe(FOLLOW_CHUNK);
      for (let position = 0; ;) {
        const last = this.finished;
        const { bytesRead } = await file.read(buffer, 0, buffer.length, position);
        if (bytesRead > 0) {
          onData(buffer.subarray(0, bytesRead));
          position += bytesRead;
          continue;
        }
        if (last) return;
        await new Promise<void>((resolve) => {
          this.wake = resolve;
          setTimeout(resolve, FOLLOW_INTERVAL_MS);
        });
        this.wake = undefined;
      }
    } finally {
      await file.close();
    }
  }
}

const FOLLOW_CHUNK = 1024 * 1024;
const FOLLOW_INTERVAL_MS = 5;

/**
 * Reads an upload's file right behind the master, which reads it through the shared descriptor, handing the bytes to
 * `UploadRequest.onData`: positional reads of the same open file, never past the offset the master has read to
 * (`/proc/self/fdinfo`), so they come from the page cache the master's read just filled. Without `/proc`, or after a
 * read failure, nothing more is handed over and core hashes the file itself.
 */
class ReaderFollower {
  private finished = false;
  private wake: (() => void) | undefined;
  readonly done: Promise<void>;

  constructor(file: FileHandle, onData: (chunk: Uint8Array) => void) {
    this.done = this.follow(file, onData).catch(() => undefined);
  }

  /** The master read the whole file (`total` bytes): hand over what is left and stop. */
  finish(): Promise<void> {
    this.finished = true;
    this.wake?.();
    return this.done;
  }

  private async follow(file: FileHandle, onData: (chunk: Uint8Array) => void): Promise<void> {
    const buffer = Buffer.allocUnsafe(FOLLOW_CHUNK);
    for (let position = 0; ;) {
      const last = this.finished;
      const readTo = await readOffset(file.fd);
      if (readTo === undefined) return;
      while (position < readTo) {
        const { bytesRead } = await file.read(buffer, 0, Math.min(buffer.length, readTo - position), position);
        if (bytesRead <= 0) return;
        onData(buffer.subarray(0, bytesRead));
        position += bytesRead;
      }
      if (last) return;
      await new Promise<void>((resolve) => {
        this.wake = resolve;
        setTimeout(resolve, FOLLOW_INTERVAL_MS);
      });
      this.wake = undefined;
    }
  }
}

/** The offset the master has read `fd` to (shared with our descriptor); undefined without `/proc`. */
async function readOffset(fd: number): Promise<number | undefined> {
  const info = await readFile(`/proc/self/fdinfo/${fd}`, "latin1").catch(() => undefined);
  const position = info === undefined ? undefined : /^pos:\s*(\d+)/m.exec(info)?.[1];
  return position === undefined ? undefined : Number(position);
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

const describeStatus = (status: { exitCode: number | null; signal: string | null }) =>
  `remote cat ${status.signal ? `was killed by ${status.signal}` : `exited with ${status.exitCode}`}`;

const message = (error: unknown) => (error instanceof Error ? error.message : String(error));

export async function uploadFile(host: TransferHost, request: UploadRequest): Promise<void> {
  const target = host.target;
  if (request.signal?.aborted) throw new AbortError(undefined, { phase: "transfer", target });
  validPath("localPath", request.localPath);
  validPath("remotePath", request.remotePath);
  if (request.mode !== undefined && (!Number.isInteger(request.mode) || request.mode < 0 || request.mode > 0o7777)) {
    throw new TransferError("mode must be an integer from 0 to 0o7777", { target });
  }
  let file: FileHandle;
  let total: number;
  try {
    file = await open(request.localPath, "r");
  } catch (error) {
    throw new TransferError(`cannot read ${request.localPath}: ${message(error)}`, { target, cause: error });
  }
  try {
    try {
      const info = await file.stat();
      if (!info.isFile()) throw new Error(`${request.localPath} is not a regular file`);
      total = info.size;
    } catch (error) {
      throw new TransferError(`cannot read ${request.localPath}: ${message(error)}`, { target, cause: error });
    }
    const command = streamUploadScript(request.remotePath, request.mode);
    const remote = host.spawnWithFiles({ command, ...(request.signal ? { signal: request.signal } : {}) }, { stdin: file.fd });
    remote.stdout.resume();
    const stderrText = collect(remote.stderr);
    const progress = new ProgressPoller(request.onProgress, () => readOffset(file.fd));
    progress.total = total;
    const follower = request.onData ? new ReaderFollower(file, request.onData) : undefined;
    try {
      await remote.started;
      progress.start();
      const status = await remote.exit;
      progress.stop();
      await follower?.finish();
      if (status.signal !== null) {
        // Something on the host killed the remote cat: nothing was committed (the caller writes a temp name), and a
        // new attempt may well succeed.
        throw new ChannelError(`upload to ${request.remotePath} failed: ${describeStatus(status)}`, { target, phase: "transfer", retryable: true });
      }
      if (status.exitCode !== 0) {
        throw new TransferError(`upload to ${request.remotePath} failed: ${(await stderrText) || describeStatus(status)}`, { target });
      }
      // The master read the file to its end: a size that moved means the remote copy is not the file we measured.
      if ((await file.stat()).size !== total) throw new TransferError(`${request.localPath} changed size during the upload`, { target });
      progress.finish(total);
    } catch (error) {
      progress.stop();
      await follower?.finish();
      throw wrapFailure(error, target, `upload to ${request.remotePath} failed`);
    }
  } finally {
    await file.close().catch(() => undefined);
  }
}

export async function downloadFile(host: TransferHost, request: DownloadRequest): Promise<void> {
  const target = host.target;
  if (request.signal?.aborted) throw new AbortError(undefined, { phase: "transfer", target });
  validPath("localPath", request.localPath);
  validPath("remotePath", request.remotePath);
  let file: FileHandle;
  try {
    file = await open(request.localPath, "w");
  } catch (error) {
    throw new TransferError(`cannot write ${request.localPath}: ${message(error)}`, { target, cause: error });
  }
  try {
    // The size goes first on stderr (one line), then the bytes on stdout.
    const command = streamDownloadScript(request.remotePath);
    const remote = host.spawnWithFiles({ command, ...(request.signal ? { signal: request.signal } : {}) }, { stdout: file.fd });
    remote.stdin.end();
    remote.stdout.resume();
    const progress = new ProgressPoller(request.onProgress, async () => (await file.stat()).size);
    let total: number | undefined;
    let sizeLine = "";
    let stderrText = "";
    remote.stderr.on("data", (chunk: Buffer) => {
      if (total === undefined && sizeLine.length < 64) {
        sizeLine += chunk.toString();
        const newline = sizeLine.indexOf("\n");
        if (newline !== -1) {
          const parsed = Number(sizeLine.slice(0, newline));
          if (sizeLine.slice(0, newline).length > 0 && Number.isSafeInteger(parsed)) {
            total = parsed;
            progress.total = parsed;
          } else stderrText += sizeLine;
          stderrText += sizeLine.slice(newline + 1);
        }
      } else if (stderrText.length < 8192) {
        stderrText += chunk.toString();
      }
    });
    const follower = request.onData ? new FileFollower(request.localPath, request.onData) : undefined;
    try {
      await remote.started;
      progress.start();
      const status = await remote.exit;
      progress.stop();
      await follower?.finish();
      if (status.exitCode !== 0) {
        throw new TransferError(`download of ${request.remotePath} failed: ${stderrText.trim() || sizeLine.trim() || describeStatus(status)}`, {
          target,
        });
      }
      const received = (await file.stat()).size;
      if (total !== undefined && received !== total) {
        throw new TransferError(`download of ${request.remotePath} got ${received} of ${total} bytes`, { target });
      }
      progress.finish(received);
    } catch (error) {
      progress.stop();
      await follower?.finish();
      throw wrapFailure(error, target, `download of ${request.remotePath} failed`);
    }
  } finally {
    await file.close().catch(() => undefined);
  }
}
