import { setMaxListeners } from "node:events";
import { open, type FileHandle } from "node:fs/promises";
import { AbortError, type DownloadRequest, type Progress, type Target, type UploadRequest } from "@tunnel-sh/core";
import type { SFTPWrapper } from "ssh2";

export interface TransferTuning {
  readonly concurrency: number;
  readonly chunkSize: number;
  readonly progressIntervalMs: number;
  /** How long an unused SFTP session stays open for the next transfer. */
  readonly sftpIdleMs: number;
}

/**
 * Signals, per SFTP session, that its connection is gone. ssh2 never calls back SFTP requests that were in flight
 * when the connection dropped, so every request also settles when this fires (the connection sets it up).
 */
const sessionLost = new WeakMap<SFTPWrapper, AbortSignal>();

/** Tie `sftp`'s pending requests to `lost`: when it aborts they reject with its reason. */
export function bindSessionLoss(sftp: SFTPWrapper, lost: AbortSignal): void {
  // Each request in flight listens (16 per transfer by default, more with parallel transfers).
  setMaxListeners(0, lost);
  sessionLost.set(sftp, lost);
}

function sftpCall<T>(sftp: SFTPWrapper, run: (callback: (error: Error | null | undefined, value: T) => void) => void): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const lost = sessionLost.get(sftp);
    if (lost?.aborted) {
      reject(lost.reason);
      return;
    }
    const onLost = () => reject(lost?.reason);
    lost?.addEventListener("abort", onLost, { once: true });
    try {
      run((error, value) => {
        lost?.removeEventListener("abort", onLost);
        if (error) reject(error);
        else resolve(value);
      });
    } catch (error) {
      lost?.removeEventListener("abort", onLost);
      reject(error);
    }
  });
}

function openRemote(sftp: SFTPWrapper, path: string, flags: "r" | "w", mode?: number): Promise<Buffer> {
  return sftpCall<Buffer>(sftp, (callback) => {
    if (mode === undefined) sftp.open(path, flags, callback);
    else sftp.open(path, flags, { mode }, callback);
  });
}

function closeRemote(sftp: SFTPWrapper, handle: Buffer): Promise<void> {
  return sftpCall<void>(sftp, (callback) => sftp.close(handle, (error) => callback(error, undefined)));
}

function remoteSize(sftp: SFTPWrapper, handle: Buffer, path: string): Promise<number> {
  return sftpCall<number>(sftp, (callback) =>
    sftp.fstat(handle, (error, stats) => {
      if (!error) return callback(undefined, stats.size);
      // Some servers lack fstat on a handle.
      sftp.stat(path, (statError, statStats) => callback(statError, statStats?.size ?? 0));
    }),
  );
}

function remoteRead(sftp: SFTPWrapper, handle: Buffer, buffer: Buffer, length: number, position: number): Promise<number> {
  return sftpCall<number>(sftp, (callback) => sftp.read(handle, buffer, 0, length, position, (error, bytesRead) => callback(error, bytesRead)));
}

function remoteWrite(sftp: SFTPWrapper, handle: Buffer, buffer: Buffer, length: number, position: number): Promise<void> {
  return sftpCall<void>(sftp, (callback) => sftp.write(handle, buffer, 0, length, position, (error) => callback(error, undefined)));
}

/** Emits progress at most every `intervalMs`, and always once at the end with `bytes === total`. */
class ProgressReporter {
  private readonly startedAt = performance.now();
  private lastAt = 0;
  bytes = 0;

  constructor(
    private readonly total: number,
    private readonly intervalMs: number,
    private readonly listener: ((progress: Progress) => void) | undefined,
  ) {}

  add(bytes: number): void {
    this.bytes += bytes;
    if (!this.listener || this.bytes >= this.total) return;
    const now = performance.now();
    if (now - this.lastAt < this.intervalMs) return;
    this.lastAt = now;
    this.emit(now);
  }

  done(): void {
    if (this.listener) this.emit(performance.now());
  }

  private emit(now: number): void {
    const seconds = (now - this.startedAt) / 1000;
    const progress: Progress = { bytes: this.bytes, total: this.total, rate: seconds > 0 ? this.bytes / seconds : 0 };
    try {
      this.listener?.(progress);
    } catch {
      // A failing progress listener must not break the transfer.
    }
  }
}

/**
 * Hands a transfer's chunks to `onData` (`DownloadRequest`'s, `UploadRequest`'s) in file order, though the parallel
 * requests complete in any order: a chunk that arrives early waits (holding its worker's buffer) until the bytes
 * before it were handed over. OpenSSH's sftp-server answers one session's requests in order, so the wait is rare
 * and short.
 */
class InOrder {
  private next = 0;
  private readonly waiting = new Map<number, () => void>();
  private stopped = false;

  constructor(private readonly onData: (chunk: Uint8Array) => void) {}

  async feed(buffer: Buffer, position: number, length: number): Promise<void> {
    if (position !== this.next && !this.stopped) await new Promise<void>((resolve) => this.waiting.set(position, resolve));
    if (this.stopped) return;
    this.onData(buffer.subarray(0, length));
    this.next = position + length;
    const wake = this.waiting.get(this.next);
    this.waiting.delete(this.next);
    wake?.();
  }

  /** No more chunks in order (a read failed, the file shrank): release every waiting worker, hand over nothing more. */
  stop(): void {
    this.stopped = true;
    for (const wake of this.waiting.values()) wake();
    this.waiting.clear();
  }
}

/**
 * Move `size` bytes in `chunkSize` pieces with `concurrency` pieces in flight, each worker owning one
 * buffer (memory stays at concurrency × chunkSize). Stops at the first failure or abort, waits for the
 * pieces in flight, then throws.
 */
async function pump(
  size: number,
  tuning: TransferTuning,
  signal: AbortSignal | undefined,
  target: Target,
  reporter: ProgressReporter,
  move: (buffer: Buffer, offset: number, length: number) => Promise<number>,
): Promise<void> {
  let next = 0;
  let failure: unknown;
  const workers = Math.max(1, Math.min(tuning.concurrency, Math.ceil(size / tuning.chunkSize)));
  const worker = async (): Promise<void> => {
    const buffer = Buffer.allocUnsafe(Math.min(tuning.chunkSize, Math.max(size, 1)));
    while (next < size && failure === undefined) {
      if (signal?.aborted) {
        failure ??= new AbortError("the transfer was aborted", { phase: "transfer", target });
        return;
      }
      let offset = next;
      const end = Math.min(next + tuning.chunkSize, size);
      next = end;
      try {
        while (offset < end) {
          const moved = await move(buffer, offset, end - offset);
          if (moved <= 0) {
            // The source shrank under us.
            next = size;
            return;
          }
          offset += moved;
          reporter.add(moved);
        }
      } catch (error) {
        failure ??= error;
        return;
      }
    }
  };
  await Promise.all(Array.from({ length: workers }, worker));
  if (failure === undefined && signal?.aborted) failure = new AbortError("the transfer was aborted", { phase: "transfer", target });
  if (failure !== undefined) throw failure;
}

async function readLocal(file: FileHandle, buffer: Buffer, length: number, position: number): Promise<number> {
  const { bytesRead } = await file.read(buffer, 0, length, position);
  return bytesRead;
}

async function writeLocal(file: FileHandle, buffer: Buffer, length: number, position: number): Promise<void> {
  let written = 0;
  while (written < length) {
    const result = await file.write(buffer, written, length - written, position + written);
    written += result.bytesWritten;
  }
}

async function readBack(file: FileHandle, buffer: Buffer, length: number, position: number): Promise<void> {
  for (let done = 0; done < length;) {
    const { bytesRead } = await file.read(buffer, done, length - done, position + done);
    if (bytesRead <= 0) throw new Error(`the local file is shorter than what was written to it (at ${position + done})`);
    done += bytesRead;
  }
}

/**
 * Copy a local file to the remote path over SFTP with parallel write requests; with `onData`, each chunk sent is handed
 * over in file order. Errors are raw; the caller normalises.
 */
export async function uploadFile(sftp: SFTPWrapper, request: UploadRequest, tuning: TransferTuning, target: Target): Promise<void> {
  const local = await open(request.localPath, "r");
  let handle: Buffer | undefined;
  try {
    const size = (await local.stat()).size;
    handle = await openRemote(sftp, request.remotePath, "w", request.mode);
    const reporter = new ProgressReporter(size, tuning.progressIntervalMs, request.onProgress);
    const ordered = request.onData ? new InOrder(request.onData) : undefined;
    await pump(size, tuning, request.signal, target, reporter, async (buffer, offset, length) => {
      try {
        const bytes = await readLocal(local, buffer, length, offset);
        if (bytes <= 0) ordered?.stop();
        else {
          await remoteWrite(sftp, handle as Buffer, buffer, bytes, offset);
          // Handed over once written, from the very buffer sent; the server answers writes in order, so the wait
          // for the bytes before is short.
          await ordered?.feed(buffer, offset, bytes);
        }
        return bytes;
      } catch (error) {
        ordered?.stop();
        throw error;
      }
    });
    const remote = handle;
    handle = undefined;
    await closeRemote(sftp, remote);
    reporter.done();
  } finally {
    if (handle) await closeRemote(sftp, handle).catch(() => {});
    await local.close().catch(() => {});
  }
}

/** Copy a remote file to the local path over SFTP with parallel read requests. Errors are raw; the caller normalises. */
export async function downloadFile(sftp: SFTPWrapper, request: DownloadRequest, tuning: TransferTuning, target: Target): Promise<void> {
  const handle = await openRemote(sftp, request.remotePath, "r");
  let local: FileHandle | undefined;
  try {
    const size = await remoteSize(sftp, handle, request.remotePath);
    // Readable too: with `onData`, each chunk is read back once written.
    local = await open(request.localPath, request.onData ? "w+" : "w");
    const file = local;
    const reporter = new ProgressReporter(size, tuning.progressIntervalMs, request.onProgress);
    const ordered = request.onData ? new InOrder(request.onData) : undefined;
    await pump(size, tuning, request.signal, target, reporter, async (buffer, offset, length) => {
      try {
        const bytes = await remoteRead(sftp, handle, buffer, length, offset);
        if (bytes <= 0) ordered?.stop();
        else {
          await writeLocal(file, buffer, bytes, offset);
          if (ordered) {
            // What is handed over is read back from the file (the page cache): the hash then vouches for what this
            // transfer wrote where, not only for what arrived.
            await readBack(file, buffer, bytes, offset);
            await ordered.feed(buffer, offset, bytes);
          }
        }
        return bytes;
      } catch (error) {
        ordered?.stop();
        throw error;
      }
    });
    await file.close();
    local = undefined;
    reporter.done();
  } finally {
    await local?.close().catch(() => {});
    await closeRemote(sftp, handle).catch(() => {});
  }
}
