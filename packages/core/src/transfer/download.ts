/**
 * Downloads: each file to a local temp name, then (verified and) renamed into place. A verified file is hashed from
 * the bytes the transport hands over as it writes the local copy (`DownloadRequest.onData`), beside the remote hash
 * on a second channel when the pool lends one; a tree lists the host once, hashes a chunk of files per remote
 * command up front, and moves its files in parallel.
 */
import { chmod, mkdir, rename, rm, stat, symlink } from "node:fs/promises";
import { join, posix } from "node:path";
import { isChannelRefusal } from "../channel-budget.js";
import { TransferError } from "../errors.js";
import type { Transfer } from "../types.js";
import { parseMode } from "../validate.js";
import { onChannel } from "./context.js";
import type { TransferChannel, TransferContext, TransferOutcome } from "./context.js";
import { StreamHash } from "./local-hash.js";
import { applyLocalOwner, localKind, wrapLocal } from "./local-files.js";
import { moveBytes } from "./outgoing.js";
import { skipExisting } from "./overwrite-policy.js";
import { eachLimited } from "./parallel-files.js";
import { ProgressMeter } from "./progress-meter.js";
import { remoteSource, walkRemote } from "./remote-files.js";
import { remoteHashes } from "./remote-hash.js";
import { localTempName } from "./temp-names.js";
import type { TreeEntry } from "./tree-entry.js";

/** Download a file or (with `recursive`) a directory tree. */
export async function downloadTransfer(context: TransferContext, transfer: Transfer): Promise<TransferOutcome> {
  const verify = transfer.verify === "sha256";
  const { kind, size } = await remoteSource(context, transfer.source);
  if (kind === "n") throw new TransferError(`the source ${transfer.source} does not exist on the host`, { target: context.target });
  if (kind === "o") throw new TransferError(`the source ${transfer.source} is not a regular file or folder`, { target: context.target });
  if (kind === "d") {
    if (!transfer.recursive) throw new TransferError(`the source ${transfer.source} is a directory; pass recursive: true`, { target: context.target });
    return downloadTree(context, transfer, verify);
  }
  let destination = transfer.destination;
  if ((await localKind(destination)) === "d" || destination.endsWith("/")) destination = join(destination, posix.basename(transfer.source));
  const meter = new ProgressMeter(transfer.onProgress, size);
  if (skipExisting(transfer.overwrite, destination, await localKind(destination), context.target)) return { bytes: 0, files: 0, skipped: 1, verified: false };
  const expected = verify ? async (channel: TransferContext) => (await remoteHashes(channel, [transfer.source]))[0] as string : undefined;
  await downloadOne(context, transfer, transfer.source, destination, size, meter, expected);
  meter.finish();
  return { bytes: meter.total ?? 0, files: 1, skipped: 0, verified: verify };
}

async function downloadTree(context: TransferContext, transfer: Transfer, verify: boolean): Promise<TransferOutcome> {
  const entries = await walkRemote(context, transfer.source);
  const root = transfer.destination;
  let skipped = entries.filter((entry) => entry.kind === "o").length;
  // The overwrite policy for every file and link, decided before any of them moves.
  const files: TreeEntry[] = [];
  const links: TreeEntry[] = [];
  for (const entry of entries) {
    if (entry.kind !== "f" && entry.kind !== "l") continue;
    const path = join(root, entry.path);
    if (skipExisting(transfer.overwrite, path, await localKind(path), context.target)) skipped += 1;
    else (entry.kind === "f" ? files : links).push(entry);
  }
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
  await eachLimited(context, files, async (entry, worker) => {
    const fileTransfer: Transfer = { ...transfer, mode: transfer.mode ?? entry.mode };
    const hash = expected.get(entry.path);
    await downloadOne(worker, fileTransfer, posix.join(transfer.source, entry.path), join(root, entry.path), entry.size, meter, hash);
    bytes += entry.size;
  });
  for (const entry of links) {
    const path = join(root, entry.path);
    await rm(path, { force: true });
    await symlink(entry.link ?? "", path);
  }
  for (const entry of entries.filter((item) => item.kind === "d")) await chmod(join(root, entry.path), entry.mode);
  meter.finish();
  return { bytes, files: files.length, skipped, verified: verify && files.length > 0 };
}

/**
 * Run `work` beside `main`, on a channel the pool lends before `main` ends; when none comes in time (a budget of one
 * channel, held by `main`) or the server refuses it, on the transfer's own channel once `main` is done. A refused
 * borrowed channel goes back to the pool's budget; it is not opened again.
 */
async function besideOrAfter<T>(context: TransferContext, main: Promise<void>, work: (context: TransferContext) => Promise<T>): Promise<T> {
  if (context.borrow) {
    const stop = new AbortController();
    const ended = main.then(
      () => undefined,
      () => undefined,
    );
    const borrowing = context.borrow(stop.signal);
    const borrowed = await Promise.race([borrowing.catch(() => undefined), ended]);
    if (borrowed) {
      const connection = borrowed.channel.connection;
      const once: TransferChannel = { connection, run: (step) => step(connection) };
      try {
        const value = await work(onChannel(context, once));
        borrowed.done();
        return value;
      } catch (error) {
        borrowed.done(error);
        if (!isChannelRefusal(error)) throw error;
      }
    } else {
      stop.abort();
      borrowing.then(
        (late) => late.done(),
        () => undefined,
      );
    }
  }
  await main;
  return work(context);
}

/**
 * Download one remote file to `destination` atomically (local temp name, then rename). With `expectedHash` (known, or
 * hashed on the host while the bytes move), the copy is checked against it and fetched once more when it differs.
 */
async function downloadOne(
  context: TransferContext,
  transfer: Transfer,
  remotePath: string,
  destination: string,
  size: number | undefined,
  meter: ProgressMeter,
  expectedHash: string | ((context: TransferContext) => Promise<string>) | undefined,
): Promise<void> {
  const temp = localTempName(destination);
  const progress = meter.file();
  try {
    for (let round = 1; ; round++) {
      let local: StreamHash | undefined;
      const moving = context.channel.run((connection) => {
        // A fresh hash per channel: a refused one's attempt may have fed some bytes already.
        local = expectedHash ? new StreamHash() : undefined;
        const hashing = local;
        return moveBytes(connection, () =>
          connection.download({
            remotePath,
            localPath: temp,
            signal: context.signal,
            onProgress: round === 1 ? progress.onProgress : () => {},
            ...(hashing ? { onData: (chunk: Uint8Array) => hashing.update(chunk) } : {}),
          }),
        );
      });
      const expected =
        typeof expectedHash === "function"
          ? besideOrAfter(context, moving, expectedHash)
          : expectedHash !== undefined
            ? Promise.resolve(expectedHash)
            : undefined;
      expected?.catch(() => {});
      await moving;
      if (!expected) break;
      const [wanted, actual] = await Promise.all([expected, (local as StreamHash).digestOf(temp, context.signal)]);
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
}
