/**
 * The local side of a transfer: the kind of a path, the listing of a tree, owners, and local errors as
 * `TransferError`s. Everything here is asynchronous (no blocking file or process calls).
 */
import { execFile } from "node:child_process";
import { chown, lstat, readdir, readlink, stat } from "node:fs/promises";
import { join } from "node:path";
import { TransferError, TunnelError } from "../errors.js";
import type { Target, Transfer } from "../types.js";
import type { TreeEntry } from "./tree-entry.js";

/** `remoteKind` for a local path. With `follow`, a link to a file counts as the file (a transfer's source is followed). */
export async function localKind(path: string, follow = false): Promise<string | undefined> {
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

/** Every entry under a local folder, in sorted order; links are listed, not followed. */
export async function walkLocal(root: string): Promise<TreeEntry[]> {
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

/** Run a lookup tool and give its output. An explicit environment: the lookups need only PATH. */
function lookup(command: string, args: readonly string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(command, args, { env: { PATH: process.env.PATH ?? "/usr/bin:/bin", LC_ALL: "C" } }, (error, stdout) => {
      if (error) reject(error);
      else resolve(stdout);
    });
  });
}

/** Change the owner/group of a downloaded file, names looked up with `id` and `getent`. */
export async function applyLocalOwner(path: string, transfer: Transfer, target: Target): Promise<void> {
  try {
    const uid =
      transfer.owner === undefined ? -1 : Number(/^\d+$/.test(transfer.owner) ? transfer.owner : (await lookup("id", ["-u", "--", transfer.owner])).trim());
    const gid =
      transfer.group === undefined
        ? -1
        : Number(/^\d+$/.test(transfer.group) ? transfer.group : (await lookup("getent", ["group", transfer.group])).split(":")[2]);
    await chown(path, uid, gid);
  } catch (error) {
    throw new TransferError(`could not change the owner of ${path}`, { target, cause: error });
  }
}

/** A local failure as a `TransferError` (tunnel's own errors and aborts pass as they are). */
export function wrapLocal(error: unknown, target: Target): unknown {
  if (TunnelError.is(error)) return error;
  const code = (error as NodeJS.ErrnoException).code;
  if ((error as Error).name === "AbortError") return error;
  return new TransferError(`local file error${code ? ` (${code})` : ""}: ${(error as Error).message}`, { target, cause: error });
}
