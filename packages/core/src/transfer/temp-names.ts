/**
 * The temporary names files are written under before the rename into place: `.<name>.tunnel-<nonce>.part` beside the
 * destination, or `.tunnel-<nonce>.part` when the longer name would pass the file system's limit, and the staging
 * folder of the same shape a tree's files wait in.
 */
import { randomBytes } from "node:crypto";
import { basename, dirname, join, posix } from "node:path";

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

/** A remote temp name beside `path`. */
export function tempName(path: string): string {
  return posix.join(posix.dirname(path), tempBaseName(posix.basename(path)));
}

/** A local temp name beside `path`. */
export function localTempName(path: string): string {
  return join(dirname(path), tempBaseName(basename(path)));
}

/** A staging folder's name, `.tunnel-<nonce>.part`: one per tree transfer, made in each folder that receives files. */
export function stagingFolderName(): string {
  return `.tunnel-${randomBytes(6).toString("hex")}.part`;
}

/** The nonces in temp names, for finding the processes that still write them. */
export function tempNonces(temps: readonly string[]): string[] {
  return [...new Set(temps.flatMap((temp) => /tunnel-([0-9a-f]{12})\.part/.exec(temp)?.[1] ?? []))];
}
