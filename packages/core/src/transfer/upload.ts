/**
 * Uploads: one file to a temp name beside its destination, then (verified and) renamed into place; a tree in three
 * steps — folders created, every file sent into a staging folder of its own folder (in parallel), then the files
 * verified and renamed a chunk per remote command — then links, folder modes and owners.
 */
import { stat } from "node:fs/promises";
import { basename, join, posix } from "node:path";
import { TransferError } from "../errors.js";
import { quote } from "../quote.js";
import type { Transfer } from "../types.js";
import { parseMode } from "../validate.js";
import type { TransferContext, TransferOutcome } from "./context.js";
import { localKind, walkLocal, wrapLocal } from "./local-files.js";
import { outgoing, sendFile } from "./outgoing.js";
import { skipExisting } from "./overwrite-policy.js";
import { eachLimited } from "./parallel-files.js";
import { ProgressMeter } from "./progress-meter.js";
import { cleanupRemote } from "./remote-cleanup.js";
import { chunked, octal, remote } from "./remote-commands.js";
import { applyRemoteOwner, remoteKind, walkRemote } from "./remote-files.js";
import { stagingFolderName } from "./temp-names.js";
import type { TreeEntry } from "./tree-entry.js";
import { commitAll } from "./upload-commit.js";

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
  if (skipExisting(transfer.overwrite, destination, existing, context.target)) return { bytes: 0, files: 0, skipped: 1, verified: false };
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

async function uploadTree(context: TransferContext, transfer: Transfer, verify: boolean): Promise<TransferOutcome> {
  const entries = await walkLocal(transfer.source);
  const root = transfer.destination;
  const at = (entry: TreeEntry) => posix.join(root, entry.path);
  const dirs = [root, ...entries.filter((entry) => entry.kind === "d").map(at)];
  for (const chunk of chunked(context, dirs, quote)) await remote(context, `mkdir -p -- ${chunk.map(quote).join(" ")}`, "creating folders");
  // Existing files, for the overwrite policy: one listing instead of a round trip per file; all decided before any byte moves.
  const existing = new Map((await walkRemote(context, root)).map((entry) => [entry.path, entry.kind]));
  let skipped = entries.filter((entry) => entry.kind === "o").length;
  const files: TreeEntry[] = [];
  const links: TreeEntry[] = [];
  for (const entry of entries) {
    if (entry.kind !== "f" && entry.kind !== "l") continue;
    if (skipExisting(transfer.overwrite, at(entry), existing.get(entry.path), context.target)) skipped += 1;
    else (entry.kind === "f" ? files : links).push(entry);
  }
  const mode = transfer.mode !== undefined ? parseMode(transfer.mode) : undefined;
  const stage = stagingFolderName();
  const items = files.map((entry) => outgoing(join(transfer.source, entry.path), at(entry), entry.size, mode ?? entry.mode, stage));
  const stages = [...new Set(items.map((item) => posix.dirname(item.temp)))];
  const meter = new ProgressMeter(
    transfer.onProgress,
    items.reduce((sum, item) => sum + item.size, 0),
  );
  try {
    for (const chunk of chunked(context, stages, quote)) await remote(context, `mkdir -m 700 -- ${chunk.map(quote).join(" ")}`, "creating staging folders");
    await eachLimited(context, items, async (item, worker) => {
      const progress = meter.file();
      await sendFile(worker, item, verify, progress.onProgress);
      progress.commit(item.size);
    });
    await commitAll(context, items, verify);
    for (const chunk of chunked(context, stages, quote)) await remote(context, `rmdir -- ${chunk.map(quote).join(" ")}`, "removing staging folders");
  } catch (error) {
    await cleanupRemote(context, stages);
    throw error;
  }
  const linkLines = links.map((entry) => `ln -sfn -- ${quote(entry.link ?? "")} ${quote(at(entry))}`);
  for (const chunk of chunked(context, linkLines, (line) => line)) await remote(context, chunk.join(" && "), "creating links");
  // Folder modes last, so a read-only folder does not stop its own files from arriving.
  const modeLines = entries.filter((entry) => entry.kind === "d").map((entry) => `chmod ${octal(entry.mode)} ${quote(at(entry))}`);
  for (const chunk of chunked(context, modeLines, (line) => line)) await remote(context, chunk.join(" && "), "setting folder modes");
  await applyRemoteOwner(context, transfer, [...dirs, ...items.map((item) => item.destination), ...links.map(at)]);
  meter.finish();
  return { bytes: meter.total ?? 0, files: items.length, skipped, verified: verify && items.length > 0 };
}
