/**
 * Between SFTP's encodings and this machine's filesystem, for the embedded test server's SFTP subsystem: the
 * VERSION packet that advertises the OpenSSH extensions, SSH strings, open flags, attributes both ways, `ls -l`
 * long names, and the status a filesystem error becomes.
 */
import type { Stats } from "node:fs";
import { constants as fsConstants } from "node:fs";
import ssh2, { type FileEntry, type SFTPWrapper } from "ssh2";

const { OPEN_MODE, STATUS_CODE } = ssh2.utils.sftp;

/** The extensions advertised in VERSION: name and version, as OpenSSH's sftp-server sends them. */
const EXTENSIONS: ReadonlyArray<readonly [string, string]> = [
  ["posix-rename@openssh.com", "1"],
  ["hardlink@openssh.com", "1"],
  ["fsync@openssh.com", "1"],
];
/** SSH_FXP_VERSION 3 without extensions: what ssh2's server sends. */
const PLAIN_VERSION = Buffer.from([0, 0, 0, 5, 2, 0, 0, 0, 3]);
/** Attributes as ssh2 parses them: only the fields the client sent are set. */
export interface RequestedAttributes {
  readonly mode?: number | undefined;
  readonly uid?: number | undefined;
  readonly gid?: number | undefined;
  readonly size?: number | undefined;
  readonly atime?: number | undefined;
  readonly mtime?: number | undefined;
}

/**
 * ssh2's server answers INIT with a VERSION that lists no extensions, so clients would not use them. The SFTP
 * session writes through its own `_protocol` reference: its first packet, that VERSION, is replaced by one that
 * lists the extensions served here.
 */
export function advertiseExtensions(sftp: SFTPWrapper): void {
  type Writer = { channelData(id: number, data: Buffer): void; channelClose(id: number): void };
  const internals = sftp as unknown as { _protocol?: Writer };
  const protocol = internals._protocol;
  if (!protocol || typeof protocol.channelData !== "function") return;
  let first = true;
  internals._protocol = {
    channelData(id, data) {
      if (first) {
        first = false;
        if (data.equals(PLAIN_VERSION)) data = versionWithExtensions();
      }
      protocol.channelData(id, data);
    },
    channelClose(id) {
      protocol.channelClose(id);
    },
  };
}

function versionWithExtensions(): Buffer {
  const body: Buffer[] = [Buffer.from([2, 0, 0, 0, 3])];
  for (const [name, version] of EXTENSIONS) body.push(sshString(Buffer.from(name)), sshString(Buffer.from(version)));
  const payload = Buffer.concat(body);
  const length = Buffer.alloc(4);
  length.writeUInt32BE(payload.length);
  return Buffer.concat([length, payload]);
}

function sshString(value: Buffer): Buffer {
  const length = Buffer.alloc(4);
  length.writeUInt32BE(value.length);
  return Buffer.concat([length, value]);
}

/** The SSH strings (uint32 length + bytes) in `data`, in order. */
export function sshStrings(data: Buffer): Buffer[] {
  const out: Buffer[] = [];
  let at = 0;
  while (at + 4 <= data.length) {
    const length = data.readUInt32BE(at);
    if (at + 4 + length > data.length) break;
    out.push(data.subarray(at + 4, at + 4 + length));
    at += 4 + length;
  }
  return out;
}

export function openFlags(flags: number): number {
  const read = (flags & OPEN_MODE.READ) !== 0;
  const write = (flags & OPEN_MODE.WRITE) !== 0 || (flags & OPEN_MODE.APPEND) !== 0;
  let mode = read && write ? fsConstants.O_RDWR : write ? fsConstants.O_WRONLY : fsConstants.O_RDONLY;
  if (flags & OPEN_MODE.APPEND) mode |= fsConstants.O_APPEND;
  if (flags & OPEN_MODE.CREAT) mode |= fsConstants.O_CREAT;
  if (flags & OPEN_MODE.TRUNC) mode |= fsConstants.O_TRUNC;
  if (flags & OPEN_MODE.EXCL) mode |= fsConstants.O_EXCL;
  return mode;
}

export async function applyAttributes(
  attrs: RequestedAttributes,
  apply: {
    size(size: number): Promise<void>;
    owner(uid: number, gid: number): Promise<void>;
    mode(mode: number): Promise<void>;
    times(atime: number, mtime: number): Promise<void>;
  },
): Promise<void> {
  if (attrs.size !== undefined) await apply.size(attrs.size);
  if (attrs.uid !== undefined && attrs.gid !== undefined) await apply.owner(attrs.uid, attrs.gid);
  if (attrs.mode !== undefined) await apply.mode(attrs.mode & 0o7777);
  if (attrs.atime !== undefined && attrs.mtime !== undefined) await apply.times(attrs.atime, attrs.mtime);
}

export function attributesOf(stats: Stats): FileEntry["attrs"] {
  return {
    mode: stats.mode,
    uid: stats.uid,
    gid: stats.gid,
    size: stats.size,
    atime: Math.floor(stats.atimeMs / 1000),
    mtime: Math.floor(stats.mtimeMs / 1000),
  };
}

const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/** An `ls -l` line, as SFTP v3 READDIR carries for clients that print it. */
export function longName(name: string, stats: Stats): string {
  const type = stats.isDirectory() ? "d" : stats.isSymbolicLink() ? "l" : stats.isFile() ? "-" : "?";
  let permissions = "";
  for (const shift of [6, 3, 0]) {
    const bits = (stats.mode >> shift) & 7;
    permissions += `${bits & 4 ? "r" : "-"}${bits & 2 ? "w" : "-"}${bits & 1 ? "x" : "-"}`;
  }
  const date = stats.mtime;
  const two = (value: number) => String(value).padStart(2, "0");
  const when = `${MONTHS[date.getMonth()]} ${String(date.getDate()).padStart(2)} ${two(date.getHours())}:${two(date.getMinutes())}`;
  const owner = `${String(stats.uid).padEnd(8)} ${String(stats.gid).padEnd(8)}`;
  return `${type}${permissions} ${String(stats.nlink).padStart(4)} ${owner} ${String(stats.size).padStart(8)} ${when} ${name}`;
}

export function statusOf(error: unknown): number {
  const code = (error as { code?: unknown } | undefined)?.code;
  if (code === "ENOENT" || code === "ENOTDIR") return STATUS_CODE.NO_SUCH_FILE;
  if (code === "EACCES" || code === "EPERM") return STATUS_CODE.PERMISSION_DENIED;
  return STATUS_CODE.FAILURE;
}

export function messageOf(error: unknown): string {
  const code = (error as { code?: unknown } | undefined)?.code;
  const message = error instanceof Error ? error.message : String(error);
  return typeof code === "string" ? `${code}: ${message.replace(/^[A-Z]+: /, "")}` : message;
}
