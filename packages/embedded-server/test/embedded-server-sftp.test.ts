import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { lstat, mkdtemp, readFile, readlink, realpath, rm, stat, writeFile } from "node:fs/promises";
import { homedir, tmpdir } from "node:os";
import { join } from "node:path";
import type { Client, FileEntry, SFTPWrapper, Stats } from "ssh2";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestServer, type TestServer } from "@tunnel-sh/embedded-server";
import { connect, opensshOptions, run } from "./embedded-server-client.js";

function openSftp(client: Client): Promise<SFTPWrapper> {
  return new Promise((resolve, reject) => client.sftp((error, sftp) => (error ? reject(error) : resolve(sftp))));
}

/** Call an SFTP method with a node-style callback as a promise. */
function call<T = void>(start: (callback: (error: Error | null | undefined, value?: T) => void) => void): Promise<T> {
  return new Promise((resolve, reject) => start((error, value) => (error ? reject(error) : resolve(value as T))));
}

describe("the embedded server's SFTP subsystem", () => {
  let server: TestServer;
  let client: Client;
  let sftp: SFTPWrapper;
  let work: string;

  beforeAll(async () => {
    server = await startTestServer();
    client = await connect(server);
    sftp = await openSftp(client);
    work = await mkdtemp(join(tmpdir(), "tunnel-sftp-test-"));
  });

  afterAll(async () => {
    client?.end();
    await server?.close();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it("moves files both ways with parallel reads and writes, byte for byte", async () => {
    const local = join(work, "local.bin");
    const remote = join(work, "remote.bin");
    const back = join(work, "back.bin");
    const payload = randomBytes(3 * 1024 * 1024 + 17);
    await writeFile(local, payload);
    // fastPut/fastGet keep many WRITE/READ requests in flight at once, at different offsets.
    await call((done) => sftp.fastPut(local, remote, { concurrency: 16, chunkSize: 32 * 1024 }, (error) => done(error)));
    expect((await readFile(remote)).equals(payload)).toBe(true);
    await call((done) => sftp.fastGet(remote, back, { concurrency: 16, chunkSize: 32 * 1024 }, (error) => done(error)));
    expect((await readFile(back)).equals(payload)).toBe(true);
  });

  it("opens, writes, fstats, fsetstats, reads and closes a handle; stat, lstat and setstat by path", async () => {
    const path = join(work, "handle.txt");
    const handle = await call<Buffer>((done) => sftp.open(path, "w", { mode: 0o640 }, done));
    await call((done) => sftp.write(handle, Buffer.from("hello sftp"), 0, 10, 0, (error) => done(error)));
    expect((await call<Stats>((done) => sftp.fstat(handle, done))).size).toBe(10);
    await call((done) => sftp.fchmod(handle, 0o600, (error) => done(error)));
    await call((done) => sftp.close(handle, (error) => done(error)));
    expect((await stat(path)).mode & 0o777).toBe(0o600);

    const reader = await call<Buffer>((done) => sftp.open(path, "r", done));
    const buffer = Buffer.alloc(64);
    const bytesRead = await call<number>((done) => sftp.read(reader, buffer, 0, 64, 6, (error, bytes) => done(error, bytes)));
    expect(buffer.subarray(0, bytesRead).toString()).toBe("sftp");
    await call((done) => sftp.close(reader, (error) => done(error)));

    await call((done) => sftp.setstat(path, { mode: 0o644, mtime: 1_000_000_000, atime: 1_000_000_000 }, (error) => done(error)));
    const attributes = await call<Stats>((done) => sftp.stat(path, done));
    expect(attributes).toMatchObject({ size: 10, mtime: 1_000_000_000 });
    expect(attributes.mode & 0o777).toBe(0o644);
    expect(attributes.isFile()).toBe(true);
    await call((done) => sftp.symlink(path, join(work, "link.txt"), (error) => done(error)));
    expect((await call<Stats>((done) => sftp.lstat(join(work, "link.txt"), done))).isSymbolicLink()).toBe(true);
  });

  it("makes, lists and removes directories; renames, links and resolves paths", async () => {
    const folder = join(work, "folder");
    await call((done) => sftp.mkdir(folder, { mode: 0o750 }, (error) => done(error)));
    expect((await stat(folder)).mode & 0o777).toBe(0o750);
    await writeFile(join(folder, "a.txt"), "a");
    await writeFile(join(folder, "b.txt"), "b");

    const entries = await call<FileEntry[]>((done) => sftp.readdir(folder, done));
    expect(entries.map((entry) => entry.filename).sort()).toEqual(["a.txt", "b.txt"]);
    expect(entries.find((entry) => entry.filename === "a.txt")?.longname).toMatch(/^-rw.* a\.txt$/);

    // Plain SFTP rename never replaces a file; posix-rename (advertised by the server) does.
    await expect(call((done) => sftp.rename(join(folder, "a.txt"), join(folder, "b.txt"), (error) => done(error)))).rejects.toThrow();
    await call((done) => sftp.rename(join(folder, "a.txt"), join(folder, "c.txt"), (error) => done(error)));
    await call((done) => sftp.ext_openssh_rename(join(folder, "c.txt"), join(folder, "b.txt"), (error) => done(error)));
    expect(await readFile(join(folder, "b.txt"), "utf8")).toBe("a");
    expect(existsSync(join(folder, "c.txt"))).toBe(false);

    await call((done) => sftp.ext_openssh_hardlink(join(folder, "b.txt"), join(folder, "hard.txt"), (error) => done(error)));
    expect((await lstat(join(folder, "hard.txt"))).nlink).toBe(2);
    await call((done) => sftp.symlink("b.txt", join(folder, "soft.txt"), (error) => done(error)));
    expect(await readlink(join(folder, "soft.txt"))).toBe("b.txt");
    expect(await call<string>((done) => sftp.readlink(join(folder, "soft.txt"), done))).toBe("b.txt");
    expect(await call<string>((done) => sftp.realpath(".", done))).toBe(await realpath(homedir()));
    expect(await call<string>((done) => sftp.realpath(join(folder, "x", ".."), done))).toBe(folder);

    for (const name of ["hard.txt", "soft.txt"]) {
      await call((done) => sftp.unlink(join(folder, name), (error) => done(error)));
    }
    await expect(call((done) => sftp.rmdir(folder, (error) => done(error)))).rejects.toThrow();
    await call((done) => sftp.unlink(join(folder, "b.txt"), (error) => done(error)));
    await call((done) => sftp.rmdir(folder, (error) => done(error)));
    expect(existsSync(folder)).toBe(false);
  });

  it("answers a missing file with NO_SUCH_FILE (2)", async () => {
    await expect(call<Stats>((done) => sftp.stat(join(work, "missing"), done))).rejects.toMatchObject({ code: 2 });
    await expect(call<Buffer>((done) => sftp.open(join(work, "missing", "x"), "w", done))).rejects.toMatchObject({ code: 2 });
  });

  it("serves the OpenSSH sftp client (batch put, rename, get; it exits once done)", async () => {
    const source = join(work, "openssh-source.txt");
    await writeFile(source, "from openssh sftp\n");
    const batch = [
      `put ${source} ${join(work, "openssh-put.txt")}`,
      `rename ${join(work, "openssh-put.txt")} ${join(work, "openssh-renamed.txt")}`,
      `get ${join(work, "openssh-renamed.txt")} ${join(work, "openssh-got.txt")}`,
    ].join("\n");
    const code = await new Promise<number | null>((resolve) => {
      const child = spawn("sftp", [...opensshOptions(server), "-P", String(server.port), "-b", "-", `${server.target.user}@${server.host}`], {
        stdio: ["pipe", "ignore", "inherit"],
      });
      child.stdin.end(`${batch}\n`);
      child.on("close", resolve);
    });
    expect(code).toBe(0);
    expect(readFileSync(join(work, "openssh-got.txt"), "utf8")).toBe("from openssh sftp\n");
    expect(existsSync(join(work, "openssh-put.txt"))).toBe(false);
  });

  it("with a root folder: / is that folder, .. cannot leave it, and commands start in it", async () => {
    const root = await mkdtemp(join(tmpdir(), "tunnel-sftp-root-"));
    const rooted = await startTestServer({ root });
    try {
      const rootedClient = await connect(rooted);
      const rootedSftp = await openSftp(rootedClient);
      expect(await call<string>((done) => rootedSftp.realpath(".", done))).toBe("/");
      await call((done) => rootedSftp.mkdir("/inside", (error) => done(error)));
      const handle = await call<Buffer>((done) => rootedSftp.open("/inside/../../../file.txt", "w", done));
      await call((done) => rootedSftp.write(handle, Buffer.from("rooted"), 0, 6, 0, (error) => done(error)));
      await call((done) => rootedSftp.close(handle, (error) => done(error)));
      expect(await readFile(join(root, "file.txt"), "utf8")).toBe("rooted");
      expect(existsSync(join(root, "inside"))).toBe(true);
      await expect(call<Stats>((done) => rootedSftp.stat("/etc/hostname", done))).rejects.toMatchObject({ code: 2 });
      expect(await run(rootedClient, "pwd")).toMatchObject({ code: 0, stdout: `${root}\n` });
      rootedClient.end();
    } finally {
      await rooted.close();
      await rm(root, { recursive: true, force: true });
    }
  });
});
