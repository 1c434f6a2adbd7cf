/**
 * What is on the host: the kind of one path, the listing of a tree (probing once per connection whether GNU `find
 * -printf` is there), and changing owners. Every command runs on the transfer's channel.
 */
import { TransferError } from "../errors.js";
import { quote } from "../quote.js";
import type { Connection } from "../transport.js";
import type { Transfer } from "../types.js";
import type { TransferContext } from "./context.js";
import { chunked, remote } from "./remote-commands.js";
import type { TreeEntry } from "./tree-entry.js";

/**
 * What exists at a remote path: `"f"` file, `"d"` directory, `"l"` link, `"o"` other, `undefined` nothing.
 * A link to a folder counts as the folder (as `cp` and `scp` treat a destination); any other link is `"l"`.
 */
export async function remoteKind(context: TransferContext, path: string): Promise<string | undefined> {
  const p = quote(path);
  const result = await remote(
    context,
    `if [ -d ${p} ]; then echo d; elif [ -L ${p} ]; then echo l; elif [ -f ${p} ]; then echo f; elif [ -e ${p} ] || [ -L ${p} ]; then echo o; else echo n; fi`,
    "checking the destination",
  );
  const kind = result.stdout.trim();
  return kind === "n" ? undefined : kind;
}

/** A download's source, followed when it is a link: its kind and (for a file) its size, in one round trip. */
export async function remoteSource(context: TransferContext, path: string): Promise<{ readonly kind: string; readonly size: number | undefined }> {
  const p = quote(path);
  const info = await remote(
    context,
    `if [ -d ${p} ]; then echo d; elif [ -f ${p} ]; then printf 'f %s\\n' "$(wc -c < ${p} | tr -d ' ')"; elif [ -e ${p} ] || [ -L ${p} ]; then echo o; else echo n; fi`,
    "checking the source",
  );
  const [kind = "", sizeText] = info.stdout.trim().split(" ");
  const size = Number(sizeText);
  return { kind, size: sizeText !== undefined && Number.isSafeInteger(size) ? size : undefined };
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
  const connection = context.channel.connection;
  let probe = gnuFind.get(connection);
  if (!probe) {
    probe = remote(context, "find / -maxdepth 0 -printf '' >/dev/null 2>&1 && echo gnu || echo other", "probing find").then(
      (result) => result.stdout.trim() === "gnu",
    );
    probe.catch(() => gnuFind.delete(connection));
    gnuFind.set(connection, probe);
  }
  return probe;
}

/** Every entry under a remote folder, sorted by path; links are listed, not followed. */
export async function walkRemote(context: TransferContext, root: string): Promise<TreeEntry[]> {
  const walk = (await hasGnuFind(context)) ? GNU_WALK : PORTABLE_WALK;
  const result = await remote(context, `cd -- ${quote(root)} && ${walk}`, "listing the remote folder");
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

/** `owner:group` for `chown`, or undefined when the transfer sets neither. */
export function ownerSpec(transfer: Transfer): string | undefined {
  if (transfer.owner === undefined && transfer.group === undefined) return undefined;
  return `${transfer.owner ?? ""}${transfer.group !== undefined ? `:${transfer.group}` : ""}`;
}

/** Change the owner/group of remote paths (through sudo when the transfer asks), a chunk per command. */
export async function applyRemoteOwner(context: TransferContext, transfer: Transfer, paths: readonly string[]): Promise<void> {
  const owner = ownerSpec(transfer);
  if (owner === undefined || paths.length === 0) return;
  for (const chunk of chunked(context, paths, quote)) {
    await remote(context, `chown -h -- ${quote(owner)} ${chunk.map(quote).join(" ")}`, "changing the owner", transfer.sudo);
  }
}
