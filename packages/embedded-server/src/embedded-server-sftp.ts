/**
 * The embedded test server's SFTP subsystem (protocol version 3, with the OpenSSH extensions posix-rename,
 * hardlink and fsync), over this machine's disk.
 *
 * Without a root folder, paths are the real filesystem's (relative ones start in the home folder), because tunnel's
 * transports and core write absolute paths such as /tmp/...; with one, `/` is that folder and `..` cannot leave it
 * (symbolic links are followed as the filesystem does: they are not confined).
 */
import {
  chmod,
  chown,
  link,
  lstat,
  mkdir,
  open,
  readdir,
  readlink,
  realpath,
  rename,
  rmdir,
  stat,
  symlink,
  truncate,
  unlink,
  utimes,
  type FileHandle,
} from "node:fs/promises";
import { posix } from "node:path";
import ssh2, { type FileEntry, type SFTPWrapper } from "ssh2";
import {
  advertiseExtensions,
  applyAttributes,
  attributesOf,
  longName,
  messageOf,
  openFlags,
  sshStrings,
  statusOf,
  type RequestedAttributes,
} from "./embedded-server-sftp-protocol.js";

const { STATUS_CODE } = ssh2.utils.sftp;

const READDIR_BATCH = 64;
const MAX_READ = 256 * 1024;

export interface SftpOptions {
  /** The folder that is `/`; undefined: the real filesystem. */
  readonly root: string | undefined;
  /** Where relative paths start (without a root). */
  readonly home: string;
}

type Handle = { readonly kind: "file"; readonly file: FileHandle } | { readonly kind: "dir"; readonly path: string; entries: string[] | undefined };

/** Serve SFTP on a session that asked for the subsystem. */
export function serveSftp(accept: () => SFTPWrapper, options: SftpOptions): void {
  const sftp = accept();
  advertiseExtensions(sftp);
  const handles = new Map<string, Handle>();
  let nextHandle = 0;

  const virtual = (path: string): string => (options.root === undefined ? posix.resolve(options.home, path || ".") : posix.resolve("/", path || "."));
  const real = (path: string): string => (options.root === undefined ? virtual(path) : posix.join(options.root, virtual(path)));

  const addHandle = (handle: Handle): Buffer => {
    const id = Buffer.alloc(4);
    id.writeUInt32BE(nextHandle++ % 0x1_0000_0000);
    handles.set(id.toString("hex"), handle);
    return id;
  };
  const fileOf = (id: Buffer): FileHandle => {
    const handle = handles.get(id.toString("hex"));
    if (handle?.kind !== "file") throw Object.assign(new Error("invalid handle"), { code: "EBADF" });
    return handle.file;
  };

  let inFlight = 0;
  let ended = false;
  /** Run one request; any thrown filesystem error becomes its status reply. */
  const serve = (id: number, work: () => Promise<void>): void => {
    inFlight++;
    work()
      .catch((error: unknown) => {
        try {
          sftp.status(id, statusOf(error), messageOf(error));
        } catch {
          // the channel is gone
        }
      })
      .finally(() => {
        inFlight--;
        if (ended && inFlight === 0) finish();
      });
  };
  const ok = (id: number) => sftp.status(id, STATUS_CODE.OK);

  sftp.on("OPEN", (id: number, path: string, flags: number, attrs: RequestedAttributes) =>
    serve(id, async () => {
      const file = await open(real(path), openFlags(flags), attrs.mode === undefined ? 0o666 : attrs.mode & 0o7777);
      sftp.handle(id, addHandle({ kind: "file", file }));
    }),
  );
  sftp.on("READ", (id: number, handle: Buffer, offset: number, length: number) =>
    serve(id, async () => {
      const buffer = Buffer.alloc(Math.min(length, MAX_READ));
      const { bytesRead } = await fileOf(handle).read(buffer, 0, buffer.length, offset);
      if (bytesRead === 0) sftp.status(id, STATUS_CODE.EOF);
      else sftp.data(id, buffer.subarray(0, bytesRead));
    }),
  );
  sftp.on("WRITE", (id: number, handle: Buffer, offset: number, data: Buffer) =>
    serve(id, async () => {
      const file = fileOf(handle);
      let written = 0;
      while (written < data.length) {
        const { bytesWritten } = await file.write(data, written, data.length - written, offset + written);
        written += bytesWritten;
      }
      ok(id);
    }),
  );
  sftp.on("CLOSE", (id: number, handle: Buffer) =>
    serve(id, async () => {
      const key = handle.toString("hex");
      const entry = handles.get(key);
      if (!entry) throw Object.assign(new Error("invalid handle"), { code: "EBADF" });
      handles.delete(key);
      if (entry.kind === "file") await entry.file.close();
      ok(id);
    }),
  );
  sftp.on("FSTAT", (id: number, handle: Buffer) =>
    serve(id, async () => {
      sftp.attrs(id, attributesOf(await fileOf(handle).stat()));
    }),
  );
  sftp.on("STAT", (id: number, path: string) =>
    serve(id, async () => {
      sftp.attrs(id, attributesOf(await stat(real(path))));
    }),
  );
  sftp.on("LSTAT", (id: number, path: string) =>
    serve(id, async () => {
      sftp.attrs(id, attributesOf(await lstat(real(path))));
    }),
  );
  sftp.on("SETSTAT", (id: number, path: string, attrs: RequestedAttributes) =>
    serve(id, async () => {
      const target = real(path);
      await applyAttributes(attrs, {
        size: (size) => truncate(target, size),
        owner: (uid, gid) => chown(target, uid, gid),
        mode: (mode) => chmod(target, mode),
        times: (atime, mtime) => utimes(target, atime, mtime),
      });
      ok(id);
    }),
  );
  sftp.on("FSETSTAT", (id: number, handle: Buffer, attrs: RequestedAttributes) =>
    serve(id, async () => {
      const file = fileOf(handle);
      await applyAttributes(attrs, {
        size: (size) => file.truncate(size),
        owner: (uid, gid) => file.chown(uid, gid),
        mode: (mode) => file.chmod(mode),
        times: (atime, mtime) => file.utimes(atime, mtime),
      });
      ok(id);
    }),
  );
  sftp.on("OPENDIR", (id: number, path: string) =>
    serve(id, async () => {
      const target = real(path);
      if (!(await stat(target)).isDirectory()) throw Object.assign(new Error("not a directory"), { code: "ENOTDIR" });
      sftp.handle(id, addHandle({ kind: "dir", path: target, entries: undefined }));
    }),
  );
  sftp.on("READDIR", (id: number, handle: Buffer) =>
    serve(id, async () => {
      const entry = handles.get(handle.toString("hex"));
      if (entry?.kind !== "dir") throw Object.assign(new Error("invalid handle"), { code: "EBADF" });
      entry.entries ??= [".", "..", ...(await readdir(entry.path))];
      const batch = entry.entries.splice(0, READDIR_BATCH);
      if (batch.length === 0) {
        sftp.status(id, STATUS_CODE.EOF);
        return;
      }
      const names: FileEntry[] = [];
      for (const name of batch) {
        const stats = await lstat(posix.join(entry.path, name)).catch(() => undefined);
        if (stats) names.push({ filename: name, longname: longName(name, stats), attrs: attributesOf(stats) });
      }
      sftp.name(id, names);
    }),
  );
  sftp.on("REMOVE", (id: number, path: string) =>
    serve(id, async () => {
      await unlink(real(path));
      ok(id);
    }),
  );
  sftp.on("MKDIR", (id: number, path: string, attrs: RequestedAttributes) =>
    serve(id, async () => {
      await mkdir(real(path), attrs.mode === undefined ? 0o777 : attrs.mode & 0o7777);
      ok(id);
    }),
  );
  sftp.on("RMDIR", (id: number, path: string) =>
    serve(id, async () => {
      await rmdir(real(path));
      ok(id);
    }),
  );
  sftp.on("REALPATH", (id: number, path: string) =>
    serve(id, async () => {
      let resolved = virtual(path);
      // Without a root, symbolic links are resolved as sftp-server does; with one, they could lead outside it.
      if (options.root === undefined) resolved = await realpath(resolved).catch(() => resolved);
      sftp.name(id, [{ filename: resolved, longname: resolved, attrs: {} as FileEntry["attrs"] }]);
    }),
  );
  sftp.on("RENAME", (id: number, from: string, to: string) =>
    serve(id, async () => {
      // SFTP v3 rename never replaces an existing file (posix-rename does).
      const exists = await lstat(real(to)).then(
        () => true,
        () => false,
      );
      if (exists) throw Object.assign(new Error("the target exists"), { code: "EEXIST" });
      await rename(real(from), real(to));
      ok(id);
    }),
  );
  sftp.on("READLINK", (id: number, path: string) =>
    serve(id, async () => {
      const target = await readlink(real(path));
      sftp.name(id, [{ filename: target, longname: target, attrs: {} as FileEntry["attrs"] }]);
    }),
  );
  // ssh2 hands the paths over in the protocol's order (link, target), whatever order the client sent them in.
  sftp.on("SYMLINK", (id: number, linkPath: string, targetPath: string) =>
    serve(id, async () => {
      await symlink(targetPath, real(linkPath));
      ok(id);
    }),
  );
  sftp.on("EXTENDED", (id: number, name: string, data: Buffer | undefined) =>
    serve(id, async () => {
      const fields = sshStrings(data ?? Buffer.alloc(0));
      if (name === "posix-rename@openssh.com" && fields.length >= 2) {
        await rename(real(fields[0]!.toString("utf8")), real(fields[1]!.toString("utf8")));
      } else if (name === "hardlink@openssh.com" && fields.length >= 2) {
        await link(real(fields[0]!.toString("utf8")), real(fields[1]!.toString("utf8")));
      } else if (name === "fsync@openssh.com" && fields.length >= 1) {
        await fileOf(fields[0]!).sync();
      } else {
        sftp.status(id, STATUS_CODE.OP_UNSUPPORTED);
        return;
      }
      ok(id);
    }),
  );

  const release = () => {
    for (const handle of handles.values()) if (handle.kind === "file") void handle.file.close().catch(() => {});
    handles.clear();
  };
  // The client's EOF ends the subsystem, as sftp-server exits on EOF: answer what is in flight, then close the
  // channel (the OpenSSH client waits for that close before it exits).
  const finish = () => {
    release();
    sftp.end();
  };
  sftp.on("end", () => {
    ended = true;
    if (inFlight === 0) finish();
  });
  sftp.on("close", release);
}
