/**
 * Putting sent files in place: (with `verify`) each temp file is hashed on the host and compared with the sha256 of
 * the bytes sent, then renamed over its destination, a chunk of files per remote command. A file whose remote copy
 * differs is sent once more; a second difference fails the transfer.
 */
import { posix } from "node:path";
import { TransferError } from "../errors.js";
import { quote } from "../quote.js";
import type { TransferContext } from "./context.js";
import { sendFile } from "./outgoing.js";
import type { Outgoing } from "./outgoing.js";
import { chunked, octal, remote } from "./remote-commands.js";
import { HASH_FUNCTIONS } from "./remote-hash.js";

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
      if (item.localHash === undefined) throw new TransferError(`no sha256 of the bytes sent for ${item.local}`, { target: context.target });
      parts.push(`tunnel_check ${quote(item.temp)} ${item.localHash} || tunnel_bad="$tunnel_bad ${index}"`);
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

/** Verify and rename every sent file, a chunk per remote command; a differing file is sent once more. */
export async function commitAll(context: TransferContext, items: readonly Outgoing[], verify: boolean): Promise<void> {
  const render = (item: Outgoing) => renameLine(item) + (verify ? ` tunnel_check ${quote(item.temp)} ${"0".repeat(64)} || tunnel_bad="$tunnel_bad 0000"` : "");
  for (const chunk of chunked(context, items, render)) {
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
