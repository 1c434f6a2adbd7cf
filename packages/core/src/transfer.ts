/**
 * File and directory transfers, derived once for every transport from `Connection.upload`/`download` (one
 * file's bytes) and remote shell commands run through `runProcess`.
 *
 * - Atomic: each file is written under a temporary name in its destination folder and renamed over the
 *   destination only when complete (and verified), so an interrupted transfer never leaves a partial file under
 *   the destination name. A single file goes to `.<name>.tunnel-<nonce>.part` (`.tunnel-<nonce>.part` when the
 *   longer name would pass the 255-byte limit of a file name); the files of a tree go to a
 *   staging folder `.tunnel-<nonce>.part/<name>` inside their own folder, so one `mv` per folder renames them all
 *   (still one atomic rename(2) per file). Temporary files are removed on failure — over another connection from
 *   the pool when the transfer's own connection was lost (that connection then serves the executor's retry).
 *   A transfer's connection closing ends the transfer with `CONNECTION_LOST` even if the transport misses it.
 * - `overwrite`: `replace` (default) renames over an existing file (or a link there: the link is replaced, not
 *   written through); `skip` leaves it (counted in `skipped`); `error` fails with a `TransferError` before any
 *   byte moves (for a tree: before any file of the tree moves).
 * - `mode` is applied to the temporary file before the rename, `owner`/`group` after it (through sudo when the
 *   transfer asks for it; for a tree, to its folders, files and links). Without `mode`, a tree keeps each
 *   file's and folder's own mode; a single upload gets the server's default for new files.
 * - `verify: "sha256"`: the local file is hashed while the transfer runs and the remote file is hashed on the host
 *   (`openssl dgst -sha256`, falling back to `sha256sum`), in the same remote command that renames it into place
 *   (a chunk of files per command for trees); a mismatch re-sends the file once, then fails. A download is hashed
 *   from the bytes the transport hands over as it writes the local copy (`DownloadRequest.onData`), beside the
 *   remote hash on a second channel, so neither side reads its file a second time once the bytes have moved.
 * - Sources and links: a transfer's source that is a link is followed; a destination that is a link to a folder
 *   counts as that folder (as with `cp`). Inside a tree (`recursive: true`), symbolic links are recreated as links
 *   with the same target text — never followed, so a link cannot pull files from outside the tree (a link out of
 *   the tree may dangle on the other side). Folders (empty ones too) are created first, then files move with
 *   bounded parallelism. Other special files (sockets, devices, FIFOs) are skipped and counted.
 * - Progress: bytes done across the whole transfer, the total when known, the rate; never decreasing within an
 *   attempt, and the last report is exactly the total. A retried transfer reports again from 0.
 */
import { createHash, randomBytes } from "node:crypto";
import { createReadStream } from "node:fs";
import { chmod, chown, lstat, mkdir, readdir, readlink, rename, rm, stat, symlink } from "node:fs/promises";
import { basename, dirname, join, posix } from "node:path";
import { ChannelError, ConnectError, TransferError, TunnelError } from "./errors.js";
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

/**
 * Runs `step` again when the server refused its channel: nothing ran, so repeating is safe. A server that allows
 * one session at a time (MaxSessions 1) frees a closed session's slot a moment after the close, and a transfer's
 * steps follow each other closely.
 */
async function whileRefused<T>(context: TransferContext, step: () => Promise<T>): Promise<T> {
  for (let refusals = 0; ; refusals++) {
    try {
      return await step();
    } catch (error) {
      const refused = ChannelError.is(error) && error.refused;
      if (!refused || refusals >= 8 || context.signal.aborted) throw error;
      await new Promise((resolve) => setTimeout(resolve, 25 * (refusals + 1)));
    }
  }
}

/** Run a remote shell command line on the transfer's connection; a non-zero exit is a `TransferError`. */
async function remote(context: TransferContext, cmd: string, what: string, sudo?: boolean | SudoOptions): Promise<RunResult> {
  const prepared = prepareCommand({ cmd, ...(sudo !== undefined ? { sudo } : {}) });
  const result = await whileRefused(context, () =>
    runProcess(context.connection, {
      command: prepared.command,
      start: prepared.start,
      signal: context.signal,
      maxOutputBytes: 1024 * 1024,
      ...(prepared.sudo ? { sudo: { ...prepared.sudo, promptTimeoutMs: context.sudoTimeout } } : {}),
    }),
  );
  if (result.exitCode !== 0) {
    // The first line is the one that says what failed (`find: unrecognized: -printf`); tools such as busybox follow
    // it with their usage text.
    const detail =
      result.stderr
        .split("\n")
        .map((line) => line.trim())
        .find((line) => line !== "") ?? "";
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
    const stop = connection.onClose((error) =>
      reject(error ?? new ConnectError("the connection closed during the transfer", { lost: true, phase: "transfer", target: connection.target })),
    );
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

/**
 * The sha256 of a download's bytes as the transport hands them over (`DownloadRequest.onData`). When they were not
 * the whole file (a transport that writes the file without showing the bytes), the finished file is read instead.
 */
class StreamHash {
  readonly #hash = createHash("sha256");
  #bytes = 0;

  update(chunk: Uint8Array): void {
    this.#hash.update(chunk);
    this.#bytes += chunk.byteLength;
  }

  async digestOf(path: string, signal: AbortSignal): Promise<string> {
    if (this.#bytes === (await stat(path)).size) return this.#hash.digest("hex");
    return sha256OfLocal(path, signal);
  }
}

/** Remote command lines are kept well under Linux's 128 KiB limit for one argument (`sh -c <command>`). */
const MAX_COMMAND_LENGTH = 48 * 1024;

/** Split `items` into runs whose rendered command parts stay under `MAX_COMMAND_LENGTH` together. */
function chunked<T>(items: readonly T[], render: (item: T) => string): T[][] {
  const chunks: T[][] = [];
  let current: T[] = [];
  let length = 0;
  for (const item of items) {
    const size = render(item).length + 4;
    if (current.length > 0 && length + size > MAX_COMMAND_LENGTH) {
      chunks.push(current);
      current = [];
      length = 0;
    }
    current.push(item);
    length += size;
  }
  if (current.length > 0) chunks.push(current);
  return chunks;
}

/**
 * Shell functions: `tunnel_hash` prints the sha256 of its stdin (`openssl dgst`, much faster than `sha256sum`, which
 * is the fallback — GNU's or busybox's — then BSD's `shasum -a 256`); `tunnel_check FILE HEX` succeeds when FILE hashes to HEX. Reading stdin keeps file
 * names out of the output.
 */
const HASH_FUNCTIONS =
  "tunnel_hash() { if command -v openssl >/dev/null 2>&1; then openssl dgst -sha256 -r; elif command -v sha256sum >/dev/null 2>&1; then sha256sum; else shasum -a 256; fi; }; " +
  'tunnel_check() { tunnel_sum=$(tunnel_hash < "$1") || return 1; [ "${tunnel_sum%% *}" = "$2" ]; }';

/** The sha256 of each remote file, in order: one remote command per chunk of paths. */
async function remoteHashes(context: TransferContext, paths: readonly string[]): Promise<string[]> {
  const hashes: string[] = [];
  for (const chunk of chunked(paths, quote)) {
    const result = await remote(
      context,
      `${HASH_FUNCTIONS}; for tunnel_file in ${chunk.map(quote).join(" ")}; do tunnel_sum=$(tunnel_hash < "$tunnel_file") || exit 1; printf '%s\\n' "\${tunnel_sum%% *}"; done`,
      "hashing the remote files",
    );
    const lines = result.stdout.split("\n").filter((line) => line !== "");
    if (lines.length !== chunk.length || !lines.every((line) => /^[0-9a-f]{64}$/.test(line))) {
      throw new TransferError("could not read the remote sha256", { target: context.target });
    }
    hashes.push(...lines);
  }
  return hashes;
}

/** One file on its way up: sent to `temp`, then (verified and) renamed to `destination`. */
interface Outgoing {
  readonly local: string;
  readonly destination: string;
  readonly temp: string;
  readonly size: number;
  readonly mode: number | undefined;
  /** The temp file sits in a staging folder under its final name (trees), rather than beside the destination. */
  readonly staged: boolean;
  /** The local file's sha256, computed while it is sent (with `verify`). */
  localHash?: Promise<string>;
}

/** A file to send to a temp name beside its destination, or (with `stage`) into that staging folder of its own folder. */
function outgoing(local: string, destination: string, size: number, mode: number | undefined, stage?: string): Outgoing {
  const temp = stage === undefined ? tempName(destination) : posix.join(posix.dirname(destination), stage, posix.basename(destination));
  return { local, destination, temp, size, mode, staged: stage !== undefined };
}

/** Send one file's bytes to its temp name, hashing the local side on the way when verifying. */
async function sendFile(context: TransferContext, item: Outgoing, verify: boolean, onProgress: (progress: Progress) => void): Promise<void> {
  if (verify) {
    item.localHash = sha256OfLocal(item.local, context.signal);
    item.localHash.catch(() => {});
  }
  await whileRefused(context, () =>
    moveBytes(context.connection, () =>
      context.connection.upload({
        localPath: item.local,
        remotePath: item.temp,
        signal: context.signal,
        onProgress,
        ...(item.mode !== undefined ? { mode: item.mode } : {}),
      }),
    ),
  );
}

const octal = (mode: number): string => mode.toString(8).padStart(4, "0");

function renameLine(item: Outgoing): string {
  const chmod = item.mode !== undefined ? `chmod ${octal(item.mode)} ${quote(item.temp)} && ` : "";
  return `${chmod}mv -f -- ${quote(item.temp)} ${quote(item.destination)}`;
}

/**
 * The commands that put `items` in place. Staged files of one folder move together: a `chmod` per mode and one
 * `mv -f -- stage/a stage/b … folder/` (still one atomic rename(2) per file), not two processes per file.
 */
function renameCommands(items: readonly Outgoing[]): string {
  const lines: string[] = [];
  const folders = new Map<string, Outgoing[]>();
  for (const item of items) {
    if (!item.staged) {
      lines.push(renameLine(item));
      continue;
    }
    const folder = posix.dirname(item.destination);
    const group = folders.get(folder) ?? [];
    group.push(item);
    folders.set(folder, group);
  }
  for (const [folder, group] of folders) {
    const modes = new Map<number, string[]>();
    for (const item of group) {
      if (item.mode === undefined) continue;
      modes.set(item.mode, [...(modes.get(item.mode) ?? []), quote(item.temp)]);
    }
    for (const [mode, temps] of modes) lines.push(`chmod ${octal(mode)} ${temps.join(" ")}`);
    lines.push(`mv -f -- ${group.map((item) => quote(item.temp)).join(" ")} ${quote(folder.endsWith("/") ? folder : `${folder}/`)}`);
  }
  return lines.join(" && ");
}

/**
 * Check (with `verify`) and rename a chunk of sent files into place in one remote command. When a remote hash
 * differs nothing of the chunk is renamed, and the files that differed are returned.
 */
async function commitChunk(context: TransferContext, items: readonly Outgoing[], verify: boolean): Promise<Outgoing[]> {
  const parts: string[] = [];
  if (verify) {
    parts.push(HASH_FUNCTIONS, "tunnel_bad=");
    for (const [index, item] of items.entries()) {
      parts.push(`tunnel_check ${quote(item.temp)} ${await (item.localHash as Promise<string>)} || tunnel_bad="$tunnel_bad ${index}"`);
    }
    parts.push('if [ -n "$tunnel_bad" ]; then echo "mismatch:$tunnel_bad"; exit 0; fi');
  }
  parts.push(renameCommands(items));
  const result = await remote(context, parts.join("; "), verify ? "verifying and renaming into place" : "renaming into place");
  const mismatch = /^mismatch:(.*)$/m.exec(result.stdout);
  if (!mismatch) return [];
  return (mismatch[1] ?? "")
    .trim()
    .split(/\s+/)
    .map((index) => items[Number(index)])
    .filter((item): item is Outgoing => item !== undefined);
}

/**
 * Verify and rename every sent file, a chunk per remote command. A file whose remote copy differs is sent once
 * more; a second difference fails the transfer.
 */
async function commitAll(context: TransferContext, items: readonly Outgoing[], verify: boolean): Promise<void> {
  const render = (item: Outgoing) => renameLine(item) + (verify ? ` tunnel_check ${quote(item.temp)} ${"0".repeat(64)} || tunnel_bad="$tunnel_bad 0000"` : "");
  for (const chunk of chunked(items, render)) {
    const differing = await commitChunk(context, chunk, verify);
    if (differing.length === 0) continue;
    for (const item of differing) {
      context.onVerifyMismatch?.(item.destination);
      await sendFile(context, item, true, () => {});
    }
    const still = await commitChunk(context, chunk, verify);
    if (still.length > 0) {
      throw new TransferError(`sha256 mismatch for ${still[0]?.destination ?? "a file"} after a second attempt`, { target: context.target });
    }
  }
}

/** Apply the policy for one existing destination: `true` to skip it; throws for `overwrite: "error"` or a folder. */
function skipExisting(context: TransferContext, transfer: Transfer, destination: string, existing: string | undefined): boolean {
  if (existing === "d") throw new TransferError(`the destination ${destination} is a directory`, { target: context.target });
  if (existing === undefined) return false;
  if (transfer.overwrite === "skip") return true;
  if (transfer.overwrite === "error") {
    throw new TransferError(`the destination ${destination} already exists (overwrite: "error")`, { target: context.target });
  }
  return false;
}

/** Change the owner/group of remote paths (through sudo when the transfer asks), a chunk per command. */
async function applyRemoteOwner(context: TransferContext, transfer: Transfer, paths: readonly string[]): Promise<void> {
  const owner = ownerSpec(transfer);
  if (owner === undefined || paths.length === 0) return;
  for (const chunk of chunked(paths, quote)) {
    await remote(context, `chown -h -- ${quote(owner)} ${chunk.map(quote).join(" ")}`, "changing the owner", transfer.sudo);
  }
}

/** The longest file name (one path component, in bytes) common file systems accept: Linux's NAME_MAX. */
const NAME_MAX = 255;

/**
 * The temporary name next to a destination: `.<name>.tunnel-<nonce>.part`, or `.tunnel-<nonce>.part` when that would
 * pass `NAME_MAX` — every name the file system accepts must stay transferable, and the temp name is 26 bytes longer.
 */
function tempBaseName(name: string): string {
  const nonce = randomBytes(6).toString("hex");
  const long = `.${name}.tunnel-${nonce}.part`;
  return Buffer.byteLength(long, "utf8") <= NAME_MAX ? long : `.tunnel-${nonce}.part`;
}

function tempName(path: string): string {
  return posix.join(posix.dirname(path), tempBaseName(posix.basename(path)));
}

function localTempName(path: string): string {
  return join(dirname(path), tempBaseName(basename(path)));
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

/** Budget for removing temp files after a failure, on the transfer's connection or (when it was lost) another one. */
const CLEANUP_TIMEOUT_MS = 10_000;

/**
 * Remove temp files whatever happened to the operation: a fresh, short budget, not the (maybe aborted) signal.
 * When the transfer's connection was lost, the files are removed over another connection from the pool (which a
 * retry then reuses), so an interrupted transfer leaves nothing behind as long as the host can be reached again.
 */
async function cleanupRemote(context: TransferContext, temps: readonly string[]): Promise<void> {
  if (temps.length === 0) return;
  const commands = chunked(temps, quote).map((chunk) => prepareCommand({ cmd: `rm -rf -- ${chunk.map(quote).join(" ")}` }));
  const removeOn = async (connection: Connection): Promise<void> => {
    for (const { command, start } of commands) {
      const result = await runProcess(connection, { command, start, timeoutMs: CLEANUP_TIMEOUT_MS });
      if (result.exitCode !== 0) throw new TransferError(`could not remove temp files: ${result.stderr.trim()}`, { target: context.target });
    }
  };
  if (!context.connection.closed) {
    try {
      await removeOn(context.connection);
      return;
    } catch {
      // Whatever stopped the removal here (a lost link, a refused channel, a timeout), try over another connection.
    }
  }
  const borrow = context.borrow;
  if (!borrow) return;
  // The transfer's own session may still have a process on the host (its connection was cut, not its shell): stop
  // every process that names one of these temp files first, so none creates one after the removal. The bracket keeps
  // the pattern from matching the shell that runs it.
  const nonces = [...new Set(temps.flatMap((temp) => /tunnel-([0-9a-f]{12})\.part/.exec(temp)?.[1] ?? []))];
  const stop =
    nonces.length > 0 ? prepareCommand({ cmd: `pkill -KILL -f -- ${quote(`[t]unnel-(${nonces.join("|")})[.]part`)} 2>/dev/null; exit 0` }).command : undefined;
  // Keep trying, over whatever connection the pool can give, until the budget is spent: the host may be flapping.
  const deadline = Date.now() + CLEANUP_TIMEOUT_MS;
  for (let tries = 1; Date.now() < deadline; tries++) {
    const borrowing = borrow();
    let timer: NodeJS.Timeout | undefined;
    const gaveUp = new Promise<undefined>((resolve) => {
      timer = setTimeout(resolve, Math.max(1, deadline - Date.now()), undefined);
      timer.unref();
    });
    const channel = await Promise.race([borrowing.catch(() => undefined), gaveUp]);
    clearTimeout(timer);
    if (channel) {
      let failure: unknown;
      try {
        if (stop) await runProcess(channel.connection, { command: stop, timeoutMs: CLEANUP_TIMEOUT_MS });
        await removeOn(channel.connection);
        // A process of the cut session that was about to open a temp file when the pkill ran: once more, a moment later.
        await new Promise((resolveLater) => setTimeout(resolveLater, 500));
        await removeOn(channel.connection);
        return;
      } catch (error) {
        failure = error;
      } finally {
        channel.done(failure);
      }
    } else {
      // Too slow to connect: give the channel back whenever it arrives.
      borrowing.then(
        (late) => late.done(),
        () => undefined,
      );
    }
    await new Promise((resolveLater) => setTimeout(resolveLater, Math.min(1_000, 100 * tries)));
  }
}

/**
 * Download one remote file to `destination` atomically (local temp name, then rename). With `expectedHash`, the
 * copy is checked against it and fetched once more when it differs. Returns false when skipped.
 */
async function downloadOne(
  context: TransferContext,
  transfer: Transfer,
  remotePath: string,
  destination: string,
  size: number | undefined,
  meter: ProgressMeter,
  expectedHash: (() => Promise<string>) | undefined,
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
      // The download's channel is asked for first, so a server with one session slot gives it to the bytes.
      let local: StreamHash | undefined;
      const moving = whileRefused(context, () => {
        // A fresh hash per attempt: a refused channel's attempt may have fed some bytes already.
        local = expectedHash ? new StreamHash() : undefined;
        const hashing = local;
        return moveBytes(context.connection, () =>
          context.connection.download({
            remotePath,
            localPath: temp,
            signal: context.signal,
            onProgress: round === 1 ? progress.onProgress : () => {},
            ...(hashing ? { onData: (chunk: Uint8Array) => hashing.update(chunk) } : {}),
          }),
        );
      });
      const expected = expectedHash?.();
      expected?.catch(() => {});
      await moving;
      if (!expected) break;
      // The remote hash runs beside the download on a second channel; a server that allows one session at a time
      // (MaxSessions 1) refuses it, and then it runs once the download's channel is free.
      const remoteHash = expected.catch((error: unknown) => {
        if (ChannelError.is(error) && error.refused && expectedHash) return expectedHash();
        throw error;
      });
      const [wanted, actual] = await Promise.all([remoteHash, (local as StreamHash).digestOf(temp, context.signal)]);
      if (wanted === actual) break;
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
  // An explicit environment: the lookups need only PATH, and nothing else of this process's environment is theirs.
  const options = { env: { PATH: process.env.PATH ?? "/usr/bin:/bin", LC_ALL: "C" } };
  try {
    const uid =
      transfer.owner === undefined
        ? -1
        : Number(/^\d+$/.test(transfer.owner) ? transfer.owner : execFileSync("id", ["-u", "--", transfer.owner], options).toString().trim());
    const gid =
      transfer.group === undefined
        ? -1
        : Number(/^\d+$/.test(transfer.group) ? transfer.group : execFileSync("getent", ["group", transfer.group], options).toString().split(":")[2]);
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

/**
 * The tree listing: NUL-separated records survive any file name — kind, mode (octal), size, path, link target.
 * GNU find prints them itself (`-printf`); elsewhere (busybox, BSD) a POSIX sh loop over `find -exec` builds the same
 * records with `stat` (GNU/busybox `-c`, BSD `-f`) and `readlink`. Which one a host needs is probed once per connection.
 */
const GNU_WALK =
  "find . -mindepth 1 \\( -type d -printf 'd\\t%m\\t0\\t%P\\0\\0' \\) -o \\( -type f -printf 'f\\t%m\\t%s\\t%P\\0\\0' \\) " +
  "-o \\( -type l -printf 'l\\t0\\t0\\t%P\\0%l\\0' \\) -o -printf 'o\\t0\\t0\\t%P\\0\\0'";
const PORTABLE_WALK =
  "find . -mindepth 1 -exec /bin/sh -c '" +
  'if stat -c %a . >/dev/null 2>&1; then st() { stat -c "%a %s" -- "$1"; }; else st() { stat -f "%Lp %z" -- "$1"; }; fi; ' +
  "for f; do p=${f#./}; " +
  'if [ -L "$f" ]; then printf "l\\t0\\t0\\t%s\\0%s\\0" "$p" "$(readlink -- "$f")"; ' +
  'elif [ -d "$f" ]; then set -- $(st "$f"); printf "d\\t%s\\t0\\t%s\\0\\0" "$1" "$p"; ' +
  'elif [ -f "$f" ]; then set -- $(st "$f"); printf "f\\t%s\\t%s\\t%s\\0\\0" "$1" "$2" "$p"; ' +
  'else printf "o\\t0\\t0\\t%s\\0\\0" "$p"; fi; done\' tunnel-walk {} +';

/** What each connection's host offers, probed once: GNU `find -printf` or not. */
const gnuFind = new WeakMap<Connection, Promise<boolean>>();

function hasGnuFind(context: TransferContext): Promise<boolean> {
  let probe = gnuFind.get(context.connection);
  if (!probe) {
    probe = remote(context, "find / -maxdepth 0 -printf '' >/dev/null 2>&1 && echo gnu || echo other", "probing find").then(
      (result) => result.stdout.trim() === "gnu",
    );
    probe.catch(() => gnuFind.delete(context.connection));
    gnuFind.set(context.connection, probe);
  }
  return probe;
}

async function walkRemote(context: TransferContext, root: string): Promise<TreeEntry[]> {
  const r = quote(root);
  const walk = (await hasGnuFind(context)) ? GNU_WALK : PORTABLE_WALK;
  const result = await remote(context, `cd -- ${r} && ${walk}`, "listing the remote folder");
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
  if (skipExisting(context, transfer, destination, existing)) return { bytes: 0, files: 0, skipped: 1, verified: false };
  const item = outgoing(transfer.source, destination, size, transfer.mode !== undefined ? parseMode(transfer.mode) : undefined);
  const progress = meter.file();
  try {
    await sendFile(context, item, verify, progress.onProgress);
    progress.commit(size);
    await commitAll(context, [item], verify);
  } catch (error) {
    await cleanupRemote(context, [item.temp]);
    throw error;
  }
  await applyRemoteOwner(context, transfer, [destination]);
  meter.finish();
  return { bytes: size, files: 1, skipped: 0, verified: verify };
}

/**
 * A tree goes up in three steps: folders are created; every file is sent to its temp name (in parallel); then the
 * files are verified and renamed into place a chunk per remote command, instead of a command per file.
 */
async function uploadTree(context: TransferContext, transfer: Transfer, verify: boolean): Promise<TransferOutcome> {
  const entries = await walkLocal(transfer.source);
  const root = transfer.destination;
  const at = (entry: TreeEntry) => posix.join(root, entry.path);
  const dirs = [root, ...entries.filter((entry) => entry.kind === "d").map(at)];
  for (const chunk of chunked(dirs, quote)) await remote(context, `mkdir -p -- ${chunk.map(quote).join(" ")}`, "creating folders");
  // Existing files, for the overwrite policy: one listing instead of a round trip per file; all decided before any byte moves.
  const existing = new Map((await walkRemote(context, root)).map((entry) => [entry.path, entry.kind]));
  let skipped = entries.filter((entry) => entry.kind === "o").length;
  const files: TreeEntry[] = [];
  const links: TreeEntry[] = [];
  for (const entry of entries) {
    if (entry.kind !== "f" && entry.kind !== "l") continue;
    if (skipExisting(context, transfer, at(entry), existing.get(entry.path))) skipped += 1;
    else (entry.kind === "f" ? files : links).push(entry);
  }
  const mode = transfer.mode !== undefined ? parseMode(transfer.mode) : undefined;
  const stage = `.tunnel-${randomBytes(6).toString("hex")}.part`;
  const items = files.map((entry) => outgoing(join(transfer.source, entry.path), at(entry), entry.size, mode ?? entry.mode, stage));
  const stages = [...new Set(items.map((item) => posix.dirname(item.temp)))];
  const meter = new ProgressMeter(
    transfer.onProgress,
    items.reduce((sum, item) => sum + item.size, 0),
  );
  try {
    for (const chunk of chunked(stages, quote)) await remote(context, `mkdir -m 700 -- ${chunk.map(quote).join(" ")}`, "creating staging folders");
    await eachLimited(context, items, async (item, worker) => {
      const progress = meter.file();
      await sendFile(worker, item, verify, progress.onProgress);
      progress.commit(item.size);
    });
    await commitAll(context, items, verify);
    for (const chunk of chunked(stages, quote)) await remote(context, `rmdir -- ${chunk.map(quote).join(" ")}`, "removing staging folders");
  } catch (error) {
    await cleanupRemote(context, stages);
    throw error;
  }
  const linkLines = links.map((entry) => `ln -sfn -- ${quote(entry.link ?? "")} ${quote(at(entry))}`);
  for (const chunk of chunked(linkLines, (line) => line)) await remote(context, chunk.join(" && "), "creating links");
  // Folder modes last, so a read-only folder does not stop its own files from arriving.
  const modeLines = entries.filter((entry) => entry.kind === "d").map((entry) => `chmod ${octal(entry.mode)} ${quote(at(entry))}`);
  for (const chunk of chunked(modeLines, (line) => line)) await remote(context, chunk.join(" && "), "setting folder modes");
  await applyRemoteOwner(context, transfer, [...dirs, ...items.map((item) => item.destination), ...links.map(at)]);
  meter.finish();
  return { bytes: meter.total ?? 0, files: items.length, skipped, verified: verify && items.length > 0 };
}

/** Download a file or (with `recursive`) a directory tree. */
export async function downloadTransfer(context: TransferContext, transfer: Transfer): Promise<TransferOutcome> {
  const verify = transfer.verify === "sha256";
  // Kind and size in one round trip; the source is followed when it is a link.
  const p = quote(transfer.source);
  const info = await remote(
    context,
    `if [ -d ${p} ]; then echo d; elif [ -f ${p} ]; then printf 'f %s\\n' "$(wc -c < ${p} | tr -d ' ')"; elif [ -e ${p} ] || [ -L ${p} ]; then echo o; else echo n; fi`,
    "checking the source",
  );
  const [kind, sizeText] = info.stdout.trim().split(" ");
  if (kind === "n") throw new TransferError(`the source ${transfer.source} does not exist on the host`, { target: context.target });
  if (kind === "o") throw new TransferError(`the source ${transfer.source} is not a regular file or folder`, { target: context.target });
  if (kind === "d") {
    if (!transfer.recursive) throw new TransferError(`the source ${transfer.source} is a directory; pass recursive: true`, { target: context.target });
    return downloadTree(context, transfer, verify);
  }
  let destination = transfer.destination;
  if ((await localKind(destination)) === "d" || destination.endsWith("/")) destination = join(destination, posix.basename(transfer.source));
  const size = Number(sizeText);
  const meter = new ProgressMeter(transfer.onProgress, Number.isSafeInteger(size) ? size : undefined);
  const expected = verify ? async () => (await remoteHashes(context, [transfer.source]))[0] as string : undefined;
  const moved = await downloadOne(context, transfer, transfer.source, destination, Number.isSafeInteger(size) ? size : undefined, meter, expected);
  if (moved) meter.finish();
  return { bytes: moved ? (meter.total ?? 0) : 0, files: moved ? 1 : 0, skipped: moved ? 0 : 1, verified: moved && verify };
}

async function downloadTree(context: TransferContext, transfer: Transfer, verify: boolean): Promise<TransferOutcome> {
  const entries = await walkRemote(context, transfer.source);
  const root = transfer.destination;
  const files = entries.filter((entry) => entry.kind === "f");
  const meter = new ProgressMeter(
    transfer.onProgress,
    files.reduce((sum, entry) => sum + entry.size, 0),
  );
  await mkdir(root, { recursive: true });
  for (const entry of entries.filter((item) => item.kind === "d")) await mkdir(join(root, entry.path), { recursive: true });
  // Every remote hash up front, a chunk of files per command, instead of a command per file.
  const hashes = verify
    ? await remoteHashes(
        context,
        files.map((entry) => posix.join(transfer.source, entry.path)),
      )
    : [];
  const expected = new Map(files.map((entry, index) => [entry.path, hashes[index]]));
  let bytes = 0;
  let moved = 0;
  let skipped = entries.filter((entry) => entry.kind === "o").length;
  await eachLimited(context, files, async (entry, worker) => {
    const fileTransfer: Transfer = { ...transfer, mode: transfer.mode ?? entry.mode };
    const hash = expected.get(entry.path);
    const done = await downloadOne(
      worker,
      fileTransfer,
      posix.join(transfer.source, entry.path),
      join(root, entry.path),
      entry.size,
      meter,
      hash !== undefined ? () => Promise.resolve(hash) : undefined,
    );
    if (done) {
      bytes += entry.size;
      moved += 1;
    } else skipped += 1;
  });
  for (const entry of entries.filter((item) => item.kind === "l")) {
    const path = join(root, entry.path);
    if ((await localKind(path)) !== undefined && transfer.overwrite === "skip") {
      skipped += 1;
      continue;
    }
    await rm(path, { force: true });
    await symlink(entry.link ?? "", path);
  }
  for (const entry of entries.filter((item) => item.kind === "d")) await chmod(join(root, entry.path), entry.mode);
  meter.finish();
  return { bytes, files: moved, skipped, verified: verify && moved > 0 };
}
