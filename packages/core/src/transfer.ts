/**
 * File and directory transfers, derived once for every transport from `Connection.upload`/`download` (one
 * file's bytes) and remote shell commands run through `runProcess`.
 *
 * - Atomic: each file is written under a temporary name in its destination folder
 *   (`.<name>.tunnel-<nonce>.part`) and renamed over the destination only when complete (and verified), so an
 *   interrupted transfer never leaves a partial file under the destination name; the temporary file is removed
 *   on failure.
 * - `overwrite`: `replace` (default) renames over an existing file; `skip` leaves it (counted in `skipped`);
 *   `error` fails with a `TransferError` before any byte moves.
 * - `mode` is applied to the temporary file before the rename, `owner`/`group` after it (through sudo when the
 *   transfer asks for it).
 * - `verify: "sha256"`: the local file is hashed while the transfer runs and the remote file is hashed on the host
 *   (`openssl dgst -sha256`, falling back to `sha256sum`); a mismatch re-sends the file once, then fails.
 * - Directories (`recursive: true`): folders (empty ones too) are created first, then files move with bounded
 *   parallelism. Symbolic links are recreated as links with the same target text — never followed, so a link
 *   cannot pull files from outside the tree. Other special files (sockets, devices, FIFOs) are skipped and counted.
 * - Progress: bytes done across the whole transfer, the total when known, the rate; never decreasing, and the
 *   last report is exactly the total.
 */
import { createHash, randomBytes } from "node:crypto";
import { createReadStream } from "node:fs";
import { chmod, chown, lstat, mkdir, readdir, readlink, rename, rm, stat, symlink } from "node:fs/promises";
import { basename, dirname, join, posix } from "node:path";
import { isConnectionError } from "./classify.js";
import { ConnectError, TransferError, TunnelError } from "./errors.js";
import { prepareCommand } from "./prepare.js";
import { quote } from "./quote.js";
import { runProcess } from "./run.js";
import type { RunResult } from "./run.js";
import type { Connection } from "./transport.js";
import type { Progress, SudoOptions, Target, Transfer } from "./types.js";
import { parseMode } from "./validate.js";

export interface TransferOutcome {
  readonly bytes: number;
  readonly files: number;
  readonly skipped: number;
  readonly verified: boolean;
}

export interface TransferContext {
  readonly connection: Connection;
  readonly target: Target;
  readonly signal: AbortSignal;
  /** Files moved at once in a directory transfer. */
  readonly parallelism: number;
  /**
   * Another channel for a parallel file of a directory transfer (each file runs several remote commands, and
   * a channel must not be shared beyond the pool's budget). Resolves a connection and a function to give it back.
   */
  readonly borrow?: () => Promise<{ readonly connection: Connection; readonly done: (error?: unknown) => void }>;
  /** Bound for sudo prompts (chown). */
  readonly sudoTimeout: number;
  /** Reports a verification retry (for traces). */
  readonly onVerifyMismatch?: (path: string) => void;
}

/** Run a remote shell command line on the transfer's connection; a non-zero exit is a `TransferError`. */
async function remote(context: TransferContext, cmd: string, what: string, sudo?: boolean | SudoOptions): Promise<RunResult> {
  const prepared = prepareCommand({ cmd, ...(sudo !== undefined ? { sudo } : {}) });
  const result = await runProcess(context.connection, {
    command: prepared.command,
    signal: context.signal,
    maxOutputBytes: 1024 * 1024,
    ...(prepared.sudo ? { sudo: { ...prepared.sudo, promptTimeoutMs: context.sudoTimeout } } : {}),
  });
  if (result.exitCode !== 0) {
    const detail = result.stderr.trim().split("\n").slice(-2).join(" ");
    throw new TransferError(`${what} failed on the host${detail ? `: ${detail}` : ` (exit ${result.exitCode ?? result.signal})`}`, {
      target: context.target,
    });
  }
  return result;
}

/** Tracks bytes across files; reports monotonically; `finish()` makes the last report the exact total. */
class ProgressMeter {
  #done = 0;
  #reported = -1;
  readonly #startedAt = performance.now();
  readonly #listener: ((progress: Progress) => void) | undefined;
  total: number | undefined;

  constructor(listener: ((progress: Progress) => void) | undefined, total?: number) {
    this.#listener = listener;
    this.total = total;
  }

  /** A per-file listener: adds that file's progress to the total. */
  file(): { onProgress: (progress: Progress) => void; commit: (size: number) => void } {
    let fileBytes = 0;
    return {
      onProgress: (progress) => {
        if (progress.bytes > fileBytes) {
          this.#done += progress.bytes - fileBytes;
          fileBytes = progress.bytes;
          this.#report();
        }
      },
      commit: (size) => {
        if (size > fileBytes) this.#done += size - fileBytes;
        fileBytes = size;
        this.#report();
      },
    };
  }

  #report(): void {
    if (!this.#listener) return;
    const bytes = this.total !== undefined ? Math.min(this.#done, this.total) : this.#done;
    if (bytes <= this.#reported) return;
    this.#reported = bytes;
    const seconds = (performance.now() - this.#startedAt) / 1000;
    try {
      this.#listener({ bytes, total: this.total, rate: seconds > 0 ? bytes / seconds : 0 });
    } catch {
      // A progress listener must not break the transfer.
    }
  }

  finish(): void {
    if (this.total !== undefined && this.#reported !== this.total) {
      this.#done = this.total;
      this.#reported = this.total - 1;
      this.#report();
    }
  }
}

/**
 * One file's bytes through the transport, ended by the connection's loss at the latest: a transport's byte mover
 * that missed the loss would otherwise hold the transfer (and the executor's retry) until the timeout.
 */
function moveBytes(connection: Connection, move: () => Promise<void>): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const stop = connection.onClose((error) => reject(error ?? new ConnectError("the connection closed during the transfer", { lost: true, phase: "transfer", target: connection.target })));
    move().then(
      () => {
        stop();
        resolve();
      },
      (error: unknown) => {
        stop();
        reject(error);
      },
    );
  });
}

function sha256OfLocal(path: string, signal: AbortSignal): Promise<string> {
  return new Promise((resolve, reject) => {
    const hash = createHash("sha256");
    const stream = createReadStream(path, { signal });
    stream.on("data", (chunk) => hash.update(chunk));
    stream.on("error", reject);
    stream.on("end", () => resolve(hash.digest("hex")));
  });
}

async function sha256OfRemote(context: TransferContext, path: string): Promise<string> {
  const p = quote(path);
  const result = await remote(
    context,
    `if command -v openssl >/dev/null 2>&1; then openssl dgst -sha256 -r ${p}; else sha256sum -- ${p}; fi`,
    "hashing the remote file",
  );
  const match = /^([0-9a-f]{64})/.exec(result.stdout.trim());
  if (!match?.[1]) throw new TransferError("could not read the remote sha256", { target: context.target });
  return match[1];
}

function tempName(path: string): string {
  const directory = posix.dirname(path);
  return posix.join(directory, `.${posix.basename(path)}.tunnel-${randomBytes(6).toString("hex")}.part`);
}

function localTempName(path: string): string {
  return join(dirname(path), `.${basename(path)}.tunnel-${randomBytes(6).toString("hex")}.part`);
}

/**
 * What exists at a remote path: `"f"` file, `"d"` directory, `"l"` link, `"o"` other, `undefined` nothing.
 * A link to a folder counts as the folder (as `cp` and `scp` treat a destination); any other link is `"l"`.
 * With `follow`, a link to a file counts as the file (a transfer's source is followed; links inside trees are not).
 */
async function remoteKind(context: TransferContext, path: string, follow = false): Promise<string | undefined> {
  const p = quote(path);
  const link = follow ? "" : `elif [ -L ${p} ]; then echo l; `;
  const result = await remote(
    context,
    `if [ -d ${p} ]; then echo d; ${link}elif [ -f ${p} ]; then echo f; elif [ -e ${p} ] || [ -L ${p} ]; then echo o; else echo n; fi`,
    "checking the destination",
  );
  const kind = result.stdout.trim();
  return kind === "n" ? undefined : kind;
}

/** `remoteKind` for a local path. */
async function localKind(path: string, follow = false): Promise<string | undefined> {
  try {
    const info = await lstat(path);
    if (!info.isSymbolicLink()) return info.isDirectory() ? "d" : info.isFile() ? "f" : "o";
    const target = await stat(path).catch(() => undefined);
    if (target?.isDirectory()) return "d";
    if (follow) return target?.isFile() ? "f" : "o";
    return "l";
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw error;
  }
}

function ownerSpec(transfer: Transfer): string | undefined {
  if (transfer.owner === undefined && transfer.group === undefined) return undefined;
  return `${transfer.owner ?? ""}${transfer.group !== undefined ? `:${transfer.group}` : ""}`;
}

/** Upload one local file to `destination` atomically. Returns false when skipped by `overwrite: "skip"`. */
async function uploadOne(
  context: TransferContext,
  transfer: Transfer,
  localPath: string,
  destination: string,
  size: number,
  meter: ProgressMeter,
  verify: boolean,
  existing: string | undefined,
): Promise<boolean> {
  if (existing === "d") throw new TransferError(`the destination ${destination} is a directory`, { target: context.target });
  if (existing !== undefined && transfer.overwrite === "skip") return false;
  if (existing !== undefined && transfer.overwrite === "error") {
    throw new TransferError(`the destination ${destination} already exists (overwrite: "error")`, { target: context.target });
  }
  const temp = tempName(destination);
  const mode = transfer.mode !== undefined ? parseMode(transfer.mode) : undefined;
  const progress = meter.file();
  try {
    for (let round = 1; ; round++) {
      const localHash = verify ? sha256OfLocal(localPath, context.signal) : undefined;
      localHash?.catch(() => {});
      await moveBytes(context.connection, () =>
        context.connection.upload({
          localPath,
          remotePath: temp,
          signal: context.signal,
          onProgress: round === 1 ? progress.onProgress : () => {},
          ...(mode !== undefined ? { mode } : {}),
        }),
      );
      if (!verify) break;
      const [expected, actual] = await Promise.all([localHash, sha256OfRemote(context, temp)]);
      if (expected === actual) break;
      if (round >= 2) {
        throw new TransferError(`sha256 mismatch for ${destination} after a second attempt`, { target: context.target });
      }
      context.onVerifyMismatch?.(destination);
    }
    progress.commit(size);
    const chmodPart = mode !== undefined ? `chmod ${mode.toString(8).padStart(4, "0")} ${quote(temp)} && ` : "";
    await remote(context, `${chmodPart}mv -f -- ${quote(temp)} ${quote(destination)}`, "renaming into place");
  } catch (error) {
    await cleanupRemote(context, [temp]);
    throw error;
  }
  const owner = ownerSpec(transfer);
  if (owner !== undefined) {
    await remote(context, `chown -h -- ${quote(owner)} ${quote(destination)}`, "changing the owner", transfer.sudo);
  }
  return true;
}

/** Budget for removing temp files after a failure, on the transfer's connection or (when it was lost) another one. */
const CLEANUP_TIMEOUT_MS = 10_000;

/**
 * Remove temp files whatever happened to the operation: a fresh, short budget, not the (maybe aborted) signal.
 * When the transfer's connection was lost, the files are removed over another connection from the pool (which a
 * retry then reuses), so an interrupted transfer leaves nothing behind as long as the host can be reached again.
 */
async function cleanupRemote(context: TransferContext, temps: readonly string[]): Promise<void> {
  if (temps.length === 0) return;
  const { command } = prepareCommand({ cmd: `rm -f -- ${temps.map(quote).join(" ")}` });
  const removeOn = async (connection: Connection): Promise<void> => {
    await runProcess(connection, { command, timeoutMs: CLEANUP_TIMEOUT_MS });
  };
  if (!context.connection.closed) {
    try {
      await removeOn(context.connection);
      return;
    } catch (error) {
      if (!isConnectionError(error) && !context.connection.closed) return;
    }
  }
  if (!context.borrow) return;
  const borrowing = context.borrow();
  let timer: NodeJS.Timeout | undefined;
  const gaveUp = new Promise<undefined>((resolve) => {
    timer = setTimeout(resolve, CLEANUP_TIMEOUT_MS, undefined);
    timer.unref();
  });
  const channel = await Promise.race([borrowing.catch(() => undefined), gaveUp]);
  clearTimeout(timer);
  if (!channel) {
    // Too slow to connect: give the channel back whenever it arrives.
    borrowing.then((late) => late.done(), () => undefined);
    return;
  }
  let failure: unknown;
  try {
    await removeOn(channel.connection);
  } catch (error) {
    failure = error;
  } finally {
    channel.done(failure);
  }
}

async function downloadOne(
  context: TransferContext,
  transfer: Transfer,
  remotePath: string,
  destination: string,
  size: number | undefined,
  meter: ProgressMeter,
  verify: boolean,
): Promise<boolean> {
  const existing = await localKind(destination);
  if (existing === "d") throw new TransferError(`the destination ${destination} is a directory`, { target: context.target });
  if (existing !== undefined && transfer.overwrite === "skip") return false;
  if (existing !== undefined && transfer.overwrite === "error") {
    throw new TransferError(`the destination ${destination} already exists (overwrite: "error")`, { target: context.target });
  }
  const temp = localTempName(destination);
  const progress = meter.file();
  try {
    for (let round = 1; ; round++) {
      const remoteHash = verify ? sha256OfRemote(context, remotePath) : undefined;
      remoteHash?.catch(() => {});
      await moveBytes(context.connection, () =>
        context.connection.download({
          remotePath,
          localPath: temp,
          signal: context.signal,
          onProgress: round === 1 ? progress.onProgress : () => {},
        }),
      );
      if (!verify) break;
      const [expected, actual] = await Promise.all([remoteHash, sha256OfLocal(temp, context.signal)]);
      if (expected === actual) break;
      if (round >= 2) throw new TransferError(`sha256 mismatch for ${remotePath} after a second attempt`, { target: context.target });
      context.onVerifyMismatch?.(remotePath);
    }
    progress.commit(size ?? (await stat(temp)).size);
    if (transfer.mode !== undefined) await chmod(temp, parseMode(transfer.mode));
    await rename(temp, destination);
  } catch (error) {
    await rm(temp, { force: true }).catch(() => undefined);
    throw wrapLocal(error, context.target);
  }
  if (transfer.owner !== undefined || transfer.group !== undefined) {
    await applyLocalOwner(destination, transfer, context.target);
  }
  return true;
}

async function applyLocalOwner(path: string, transfer: Transfer, target: Target): Promise<void> {
  const { execFileSync } = await import("node:child_process");
  try {
    const uid = transfer.owner === undefined ? -1 : Number(/^\d+$/.test(transfer.owner) ? transfer.owner : execFileSync("id", ["-u", "--", transfer.owner]).toString().trim());
    const gid = transfer.group === undefined ? -1 : Number(/^\d+$/.test(transfer.group) ? transfer.group : execFileSync("getent", ["group", transfer.group]).toString().split(":")[2]);
    await chown(path, uid, gid);
  } catch (error) {
    throw new TransferError(`could not change the owner of ${path}`, { target, cause: error });
  }
}

function wrapLocal(error: unknown, target: Target): unknown {
  if (TunnelError.is(error)) return error;
  const code = (error as NodeJS.ErrnoException).code;
  if ((error as Error).name === "AbortError") return error;
  return new TransferError(`local file error${code ? ` (${code})` : ""}: ${(error as Error).message}`, { target, cause: error });
}

/**
 * Runs `work` over `items` with at most `context.parallelism` at once; each worker past the first borrows its own
 * channel. The first failure stops new work and is thrown.
 */
async function eachLimited<T>(context: TransferContext, items: readonly T[], work: (item: T, context: TransferContext) => Promise<void>): Promise<void> {
  let next = 0;
  let failed: unknown;
  const run = async (workerContext: TransferContext) => {
    while (failed === undefined && next < items.length) {
      const item = items[next++] as T;
      try {
        await work(item, workerContext);
      } catch (error) {
        failed ??= error;
      }
    }
  };
  const borrowed = async () => {
    if (!context.borrow) return;
    const channel = await context.borrow();
    let error: unknown;
    try {
      await run({ ...context, connection: channel.connection });
    } catch (caught) {
      error = caught;
      throw caught;
    } finally {
      channel.done(error);
    }
  };
  const workers = Math.max(1, Math.min(context.parallelism, items.length));
  await Promise.all([run(context), ...Array.from({ length: workers - 1 }, () => borrowed().catch((error: unknown) => void (failed ??= error)))]);
  if (failed !== undefined) throw failed;
}

interface TreeEntry {
  readonly kind: "f" | "d" | "l" | "o";
  /** Path relative to the tree's root, POSIX separators. */
  readonly path: string;
  readonly mode: number;
  readonly size: number;
  readonly link?: string;
}

async function walkLocal(root: string): Promise<TreeEntry[]> {
  const entries: TreeEntry[] = [];
  const visit = async (relative: string) => {
    for (const name of (await readdir(join(root, relative))).sort()) {
      const path = relative ? `${relative}/${name}` : name;
      const info = await lstat(join(root, path));
      if (info.isSymbolicLink()) entries.push({ kind: "l", path, mode: 0, size: 0, link: await readlink(join(root, path)) });
      else if (info.isDirectory()) {
        entries.push({ kind: "d", path, mode: info.mode & 0o7777, size: 0 });
        await visit(path);
      } else if (info.isFile()) entries.push({ kind: "f", path, mode: info.mode & 0o7777, size: info.size });
      else entries.push({ kind: "o", path, mode: 0, size: 0 });
    }
  };
  await visit("");
  return entries;
}

async function walkRemote(context: TransferContext, root: string): Promise<TreeEntry[]> {
  const r = quote(root);
  // NUL-separated records survive any file name: kind, mode (octal), size, path, link target.
  const result = await remote(
    context,
    `cd -- ${r} && find . -mindepth 1 \\( -type d -printf 'd\\t%m\\t0\\t%P\\0\\0' \\) -o \\( -type f -printf 'f\\t%m\\t%s\\t%P\\0\\0' \\) ` +
      `-o \\( -type l -printf 'l\\t0\\t0\\t%P\\0%l\\0' \\) -o -printf 'o\\t0\\t0\\t%P\\0\\0'`,
    "listing the remote folder",
  );
  const parts = result.stdout.split("\0");
  const entries: TreeEntry[] = [];
  for (let index = 0; index + 1 < parts.length; index += 2) {
    const [kind, mode, size, ...rest] = (parts[index] as string).split("\t");
    const path = rest.join("\t");
    const link = parts[index + 1] as string;
    entries.push({
      kind: kind as TreeEntry["kind"],
      path,
      mode: Number.parseInt(mode ?? "0", 8),
      size: Number(size ?? 0),
      ...(kind === "l" ? { link } : {}),
    });
  }
  if (result.truncated) throw new TransferError(`the listing of ${root} is too large`, { target: context.target });
  entries.sort((a, b) => (a.path < b.path ? -1 : 1));
  return entries;
}

/** Upload a file or (with `recursive`) a directory tree. */
export async function uploadTransfer(context: TransferContext, transfer: Transfer): Promise<TransferOutcome> {
  const verify = transfer.verify === "sha256";
  const sourceKind = await localKind(transfer.source, true).catch((error: unknown) => {
    throw wrapLocal(error, context.target);
  });
  if (sourceKind === undefined) throw new TransferError(`the source ${transfer.source} does not exist`, { target: context.target });
  if (sourceKind === "o") throw new TransferError(`the source ${transfer.source} is not a regular file or folder`, { target: context.target });
  if (sourceKind === "d") {
    if (!transfer.recursive) throw new TransferError(`the source ${transfer.source} is a directory; pass recursive: true`, { target: context.target });
    return uploadTree(context, transfer, verify);
  }
  const size = (await stat(transfer.source)).size;
  let destination = transfer.destination;
  let existing = await remoteKind(context, destination);
  if (existing === "d" || destination.endsWith("/")) {
    destination = posix.join(destination, basename(transfer.source));
    existing = await remoteKind(context, destination);
  }
  const meter = new ProgressMeter(transfer.onProgress, size);
  const moved = await uploadOne(context, transfer, transfer.source, destination, size, meter, verify, existing);
  if (moved) meter.finish();
  return { bytes: moved ? size : 0, files: moved ? 1 : 0, skipped: moved ? 0 : 1, verified: moved && verify };
}

async function uploadTree(context: TransferContext, transfer: Transfer, verify: boolean): Promise<TransferOutcome> {
  const entries = await walkLocal(transfer.source);
  const root = transfer.destination;
  const files = entries.filter((entry) => entry.kind === "f");
  const total = files.reduce((sum, entry) => sum + entry.size, 0);
  const meter = new ProgressMeter(transfer.onProgress, total);
  const dirs = [root, ...entries.filter((entry) => entry.kind === "d").map((entry) => posix.join(root, entry.path))];
  await remote(context, `mkdir -p -- ${dirs.map(quote).join(" ")}`, "creating folders");
  // Existing files, for the overwrite policy: one listing instead of a round trip per file.
  const existing = new Map((await walkRemote(context, root)).map((entry) => [entry.path, entry.kind]));
  let bytes = 0;
  let moved = 0;
  let skipped = entries.filter((entry) => entry.kind === "o").length;
  await eachLimited(context, files, async (entry, worker) => {
    const local = join(transfer.source, entry.path);
    const fileTransfer: Transfer = { ...transfer, mode: transfer.mode ?? entry.mode };
    const done = await uploadOne(worker, fileTransfer, local, posix.join(root, entry.path), entry.size, meter, verify, existing.get(entry.path));
    if (done) {
      bytes += entry.size;
      moved += 1;
    } else skipped += 1;
  });
  const links = entries.filter((entry) => entry.kind === "l");
  if (links.length > 0) {
    await remote(
      context,
      links.map((entry) => `ln -sfn -- ${quote(entry.link ?? "")} ${quote(posix.join(root, entry.path))}`).join(" && "),
      "creating links",
    );
  }
  // Folder modes last, so a read-only folder does not stop its own files from arriving.
  const modes = entries.filter((entry) => entry.kind === "d").map((entry) => `chmod ${entry.mode.toString(8)} ${quote(posix.join(root, entry.path))}`);
  if (modes.length > 0) await remote(context, modes.join(" && "), "setting folder modes");
  meter.finish();
  return { bytes, files: moved, skipped, verified: verify && moved > 0 };
}

/** Download a file or (with `recursive`) a directory tree. */
export async function downloadTransfer(context: TransferContext, transfer: Transfer): Promise<TransferOutcome> {
  const verify = transfer.verify === "sha256";
  const kind = await remoteKind(context, transfer.source, true);
  if (kind === undefined) throw new TransferError(`the source ${transfer.source} does not exist on the host`, { target: context.target });
  if (kind === "o") throw new TransferError(`the source ${transfer.source} is not a regular file or folder`, { target: context.target });
  if (kind === "d") {
    if (!transfer.recursive) throw new TransferError(`the source ${transfer.source} is a directory; pass recursive: true`, { target: context.target });
    return downloadTree(context, transfer, verify);
  }
  let destination = transfer.destination;
  if ((await localKind(destination)) === "d" || destination.endsWith("/")) destination = join(destination, posix.basename(transfer.source));
  const sizeResult = await remote(context, `wc -c < ${quote(transfer.source)}`, "reading the file size");
  const size = Number(sizeResult.stdout.trim());
  const meter = new ProgressMeter(transfer.onProgress, Number.isFinite(size) ? size : undefined);
  const moved = await downloadOne(context, transfer, transfer.source, destination, size, meter, verify);
  if (moved) meter.finish();
  return { bytes: moved ? size : 0, files: moved ? 1 : 0, skipped: moved ? 0 : 1, verified: moved && verify };
}

async function downloadTree(context: TransferContext, transfer: Transfer, verify: boolean): Promise<TransferOutcome> {
  const entries = await walkRemote(context, transfer.source);
  const root = transfer.destination;
  const files = entries.filter((entry) => entry.kind === "f");
  const meter = new ProgressMeter(transfer.onProgress, files.reduce((sum, entry) => sum + entry.size, 0));
  await mkdir(root, { recursive: true });
  for (const entry of entries.filter((item) => item.kind === "d")) await mkdir(join(root, entry.path), { recursive: true });
  let bytes = 0;
  let moved = 0;
  let skipped = entries.filter((entry) => entry.kind === "o").length;
  await eachLimited(context, files, async (entry, worker) => {
    const fileTransfer: Transfer = { ...transfer, mode: transfer.mode ?? entry.mode };
    const done = await downloadOne(worker, fileTransfer, posix.join(transfer.source, entry.path), join(root, entry.path), entry.size, meter, verify);
    if (done) {
      bytes += entry.size;
      moved += 1;
    } else skipped += 1;
  });
  for (const entry of entries.filter((item) => item.kind === "l")) {
    const path = join(root, entry.path);
    await rm(path, { force: true });
    await symlink(entry.link ?? "", path);
  }
  for (const entry of entries.filter((item) => item.kind === "d")) await chmod(join(root, entry.path), entry.mode);
  meter.finish();
  return { bytes, files: moved, skipped, verified: verify && moved > 0 };
}
