import { randomBytes } from "node:crypto";
import { lstat, mkdir, mkdtemp, readFile, readdir, readlink, rm, stat, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { DefaultExecutorConfig } from "../src/config.js";
import { PassThrough, Readable } from "node:stream";
import { ConnectError, TransferError, ValidationError } from "../src/errors.js";
import type { TunnelError } from "../src/errors.js";
import { Executor } from "../src/executor.js";
import type { Connection, DownloadRequest } from "../src/transport.js";
import type { Progress } from "../src/types.js";
import { fakePool, localTransferFaults, localTransport } from "./support/fake-pool.js";

// The "remote" side of these tests is the local machine through local shells: the logic above the transport
// (temp names, renames, policies, verification, trees, progress) is exercised with real files and a real sh.
const config = DefaultExecutorConfig().with({ retryBackoff: 1, maxRetryDelay: 5, retryJitter: 0 });
const host = { host: "local", user: "tester" };
let dir: string;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "tunnel-transfer-test-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const leftovers = async (folder: string) => (await readdir(folder)).filter((name) => name.includes(".tunnel-"));

describe("transferFile (single files)", () => {
  it("uploads atomically, applies the mode, reports progress ending exactly at the size", async () => {
    const data = randomBytes(300_000);
    await writeFile(join(dir, "src.bin"), data);
    await mkdir(join(dir, "remote"));
    const progress: Progress[] = [];
    const result = await new Executor(fakePool(), config).transferFile({
      ...host,
      direction: "upload",
      source: join(dir, "src.bin"),
      destination: join(dir, "remote", "dest.bin"),
      mode: "0640",
      verify: "sha256",
      onProgress: (p) => progress.push(p),
    });
    expect(result).toMatchObject({ bytes: 300_000, files: 1, skipped: 0, verified: true, attempts: 1 });
    expect(await readFile(join(dir, "remote", "dest.bin"))).toEqual(data);
    expect((await stat(join(dir, "remote", "dest.bin"))).mode & 0o777).toBe(0o640);
    expect(progress.at(-1)).toMatchObject({ bytes: 300_000, total: 300_000 });
    for (let i = 1; i < progress.length; i++) expect(progress[i]!.bytes).toBeGreaterThan(progress[i - 1]!.bytes);
    expect(await leftovers(join(dir, "remote"))).toEqual([]);
  });

  it("round-trips an empty file, into a destination folder", async () => {
    await writeFile(join(dir, "empty"), "");
    await mkdir(join(dir, "remote"));
    const progress: Progress[] = [];
    await new Executor(fakePool(), config).transferFile({
      ...host,
      direction: "upload",
      source: join(dir, "empty"),
      destination: join(dir, "remote"),
      onProgress: (p) => progress.push(p),
    });
    expect((await stat(join(dir, "remote", "empty"))).size).toBe(0);
    expect(progress).toEqual([expect.objectContaining({ bytes: 0, total: 0 })]);
    await new Executor(fakePool(), config).transferFile({
      ...host,
      direction: "download",
      source: join(dir, "remote", "empty"),
      destination: join(dir, "back"),
    });
    expect((await stat(join(dir, "back"))).size).toBe(0);
  });

  it("honours overwrite: skip and error, and replaces by default", async () => {
    await writeFile(join(dir, "new"), "new");
    await writeFile(join(dir, "old"), "old");
    const executor = new Executor(fakePool(), config);
    const base = { ...host, direction: "upload" as const, source: join(dir, "new"), destination: join(dir, "old") };
    expect(await executor.transferFile({ ...base, overwrite: "skip" })).toMatchObject({ files: 0, skipped: 1 });
    expect(await readFile(join(dir, "old"), "utf8")).toBe("old");
    await expect(executor.transferFile({ ...base, overwrite: "error" })).rejects.toBeInstanceOf(TransferError);
    await executor.transferFile(base);
    expect(await readFile(join(dir, "old"), "utf8")).toBe("new");
  });

  it("verifies a download with the bytes the transport hands over while they move, else with the finished file", async () => {
    const data = randomBytes(200_000);
    await writeFile(join(dir, "remote.bin"), data);
    const pool = fakePool();
    const local = await pool.current();
    let handOver: "all, one byte flipped" | "none" | "half" = "none";
    const download = async (request: DownloadRequest): Promise<void> => {
      await local.download(request);
      const seen = Buffer.from(await readFile(request.localPath));
      if (handOver === "all, one byte flipped") seen[0] = (seen[0] ?? 0) ^ 0xff;
      if (handOver === "half") request.onData?.(seen.subarray(0, seen.length / 2));
      else if (handOver !== "none") request.onData?.(seen);
    };
    // The local connection, but its downloads hand over the bytes the test chooses.
    pool.connection = new Proxy(local, {
      get(target, property) {
        if (property === "download") return download;
        const value: unknown = Reflect.get(target, property, target);
        return typeof value === "function" ? (value as (...args: unknown[]) => unknown).bind(target) : value;
      },
    });
    const executor = new Executor(pool, config);
    const fetch = (name: string) =>
      executor.transferFile({ ...host, direction: "download", source: join(dir, "remote.bin"), destination: join(dir, name), verify: "sha256" });
    // The bytes handed over are what is hashed: a flipped byte in them is a mismatch, though the file itself is intact.
    handOver = "all, one byte flipped";
    await expect(fetch("flipped")).rejects.toBeInstanceOf(TransferError);
    expect(await readdir(dir)).not.toContain("flipped");
    // A transport that hands over nothing, or only part of the file: the finished file is hashed instead.
    handOver = "none";
    expect(await fetch("none")).toMatchObject({ verified: true });
    handOver = "half";
    expect(await fetch("half")).toMatchObject({ verified: true });
    expect(await readFile(join(dir, "half"))).toEqual(data);
  });

  it("catches a corrupted copy with verify, re-sends once, and fails when it stays corrupt", async () => {
    await writeFile(join(dir, "src"), randomBytes(10_000));
    const executor = new Executor(fakePool(), config);
    localTransferFaults.corruptNext = 1;
    await executor.transferFile({ ...host, direction: "upload", source: join(dir, "src"), destination: join(dir, "once"), verify: "sha256" });
    expect(await readFile(join(dir, "once"))).toEqual(await readFile(join(dir, "src")));
    localTransferFaults.corruptNext = 2;
    const error = await executor
      .transferFile({ ...host, direction: "upload", source: join(dir, "src"), destination: join(dir, "twice"), verify: "sha256" })
      .catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(TransferError);
    expect(await readdir(dir)).not.toContain("twice");
    expect(await leftovers(dir)).toEqual([]);
  });

  it("retries a transfer cut by a lost connection, with progress that never goes back", async () => {
    const data = randomBytes(400_000);
    await writeFile(join(dir, "src"), data);
    localTransferFaults.loseNext = 1;
    const progress: Progress[] = [];
    const result = await new Executor(fakePool(), config).transferFile({
      ...host,
      direction: "upload",
      source: join(dir, "src"),
      destination: join(dir, "dest"),
      onProgress: (p) => progress.push(p),
    });
    expect(result).toMatchObject({ attempts: 2, bytes: 400_000 });
    expect(await readFile(join(dir, "dest"))).toEqual(data);
    for (let i = 1; i < progress.length; i++) expect(progress[i]!.bytes).toBeGreaterThan(progress[i - 1]!.bytes);
    expect(progress.at(-1)).toMatchObject({ bytes: 400_000, total: 400_000 });
    expect(await leftovers(dir)).toEqual([]);
  });

  it("rejects a missing source and invalid input", async () => {
    const executor = new Executor(fakePool(), config);
    await expect(executor.transferFile({ ...host, direction: "upload", source: join(dir, "nope"), destination: join(dir, "x") })).rejects.toBeInstanceOf(
      TransferError,
    );
    await expect(
      executor.transferFile({ ...host, direction: "upload", source: join(dir, "a"), destination: join(dir, "x"), mode: "0999" }),
    ).rejects.toBeInstanceOf(ValidationError);
  });
});

describe("transferFile (trees)", () => {
  it("round-trips nested folders, empty folders, modes and symlinks", async () => {
    const src = join(dir, "src");
    await mkdir(join(src, "a", "b"), { recursive: true });
    await mkdir(join(src, "empty"));
    for (let i = 0; i < 30; i++) await writeFile(join(src, i % 2 ? "a" : "a/b", `file ${i}.txt`), `content ${i}\n`, { mode: i % 3 ? 0o644 : 0o755 });
    await symlink("a/file 1.txt", join(src, "link"));
    const executor = new Executor(fakePool(), config);
    const up = await executor.transferFile({ ...host, direction: "upload", source: src, destination: join(dir, "remote"), recursive: true });
    expect(up).toMatchObject({ files: 30, skipped: 0 });
    const down = await executor.transferFile({ ...host, direction: "download", source: join(dir, "remote"), destination: join(dir, "back"), recursive: true });
    expect(down.files).toBe(30);
    for (let i = 0; i < 30; i++) {
      const path = join(i % 2 ? "a" : "a/b", `file ${i}.txt`);
      expect(await readFile(join(dir, "back", path), "utf8")).toBe(`content ${i}\n`);
      expect((await stat(join(dir, "back", path))).mode & 0o777).toBe(i % 3 ? 0o644 : 0o755);
    }
    expect((await lstat(join(dir, "back", "empty"))).isDirectory()).toBe(true);
    expect(await readlink(join(dir, "back", "link"))).toBe("a/file 1.txt");
  });
});

/** A connection whose upload writes part of the temp file and then hangs, as a transport that missed a lost link would. */
async function losingConnection(): Promise<Connection & { readonly uploading: Promise<void> }> {
  const inner = await localTransport().connect({ host: "localhost" });
  const listeners = new Set<(error?: TunnelError) => void>();
  let closed = false;
  let uploading!: () => void;
  const started = new Promise<void>((resolve) => (uploading = resolve));
  const lost = () => new ConnectError("the connection was lost", { lost: true });
  return {
    transport: "losing",
    target: inner.target,
    capabilities: inner.capabilities,
    maxChannels: inner.maxChannels,
    get closed() {
      return closed;
    },
    uploading: started,
    spawn(request) {
      if (!closed) return inner.spawn(request);
      const failed = Promise.reject(lost());
      failed.catch(() => undefined);
      return { stdin: new PassThrough(), stdout: Readable.from([]), stderr: Readable.from([]), started: failed, exit: failed, kill: async () => {} };
    },
    async upload(request) {
      await writeFile(request.remotePath, "partial");
      uploading();
      await new Promise(() => {});
    },
    download: (request) => inner.download(request),
    ping: async () => {
      if (closed) throw lost();
    },
    async close() {
      closed = true;
      for (const listener of listeners) listener(lost());
    },
    onClose(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
  };
}

describe("transferFile (interruptions, links, tree policies)", () => {
  it("ends a transfer whose connection is lost, removes its temp file over another connection, and the retry succeeds", async () => {
    const data = randomBytes(50_000);
    await writeFile(join(dir, "src"), data);
    await mkdir(join(dir, "remote"));
    const pool = fakePool();
    const losing = await losingConnection();
    const replacements = localTransport();
    const replacement = await replacements.connect({ host: "localhost" });
    pool.connection = losing;
    void losing.uploading.then(() => {
      pool.connection = replacement;
      void losing.close();
    });
    const result = await new Executor(pool, config).transferFile({
      ...host,
      direction: "upload",
      source: join(dir, "src"),
      destination: join(dir, "remote", "dest"),
    });
    expect(result.attempts).toBe(2);
    expect(await readFile(join(dir, "remote", "dest"))).toEqual(data);
    expect(await leftovers(join(dir, "remote"))).toEqual([]);
    expect(replacements.callsOf("spawn").some((call) => call.command?.includes("rm -rf"))).toBe(true);
  });

  it("follows a source link, and puts a file into the folder a destination link points to", async () => {
    await writeFile(join(dir, "real"), "real content\n");
    await symlink(join(dir, "real"), join(dir, "source-link"));
    await mkdir(join(dir, "folder"));
    await symlink(join(dir, "folder"), join(dir, "folder-link"));
    const executor = new Executor(fakePool(), config);
    await executor.transferFile({ ...host, direction: "upload", source: join(dir, "source-link"), destination: join(dir, "folder-link") });
    const arrived = join(dir, "folder", "source-link");
    expect((await lstat(arrived)).isFile()).toBe(true);
    expect(await readFile(arrived, "utf8")).toBe("real content\n");
    await executor.transferFile({ ...host, direction: "download", source: join(dir, "source-link"), destination: join(dir, "copy") });
    expect((await lstat(join(dir, "copy"))).isFile()).toBe(true);
  });

  it("replaces a link at the destination instead of writing through it", async () => {
    await writeFile(join(dir, "new"), "new\n");
    await writeFile(join(dir, "target"), "target\n");
    await symlink(join(dir, "target"), join(dir, "dest-link"));
    await new Executor(fakePool(), config).transferFile({ ...host, direction: "upload", source: join(dir, "new"), destination: join(dir, "dest-link") });
    expect((await lstat(join(dir, "dest-link"))).isFile()).toBe(true);
    expect(await readFile(join(dir, "target"), "utf8")).toBe("target\n");
  });

  it("fails a tree with overwrite: error before any of its files moves, leaving no staging folder", async () => {
    const src = join(dir, "tree");
    await mkdir(join(src, "sub"), { recursive: true });
    for (const name of ["a", "b", "sub/c"]) await writeFile(join(src, name), name);
    const destination = join(dir, "dest");
    await mkdir(join(destination, "sub"), { recursive: true });
    await writeFile(join(destination, "sub", "c"), "old");
    const outcome = new Executor(fakePool(), config).transferFile({
      ...host,
      direction: "upload",
      source: src,
      destination,
      recursive: true,
      overwrite: "error",
    });
    await expect(outcome).rejects.toBeInstanceOf(TransferError);
    expect((await readdir(destination)).sort()).toEqual(["sub"]);
    expect(await readdir(join(destination, "sub"))).toEqual(["c"]);
    expect(await readFile(join(destination, "sub", "c"), "utf8")).toBe("old");
  });

  it("verifies every file of a tree and renames them in place, leaving no staging folder", async () => {
    const src = join(dir, "tree");
    await mkdir(join(src, "x", "y"), { recursive: true });
    for (let i = 0; i < 12; i++) await writeFile(join(src, i % 3 === 0 ? "" : i % 3 === 1 ? "x" : "x/y", `f${i}`), randomBytes(1000 + i));
    localTransferFaults.corruptNext = 1;
    const result = await new Executor(fakePool(), config).transferFile({
      ...host,
      direction: "upload",
      source: src,
      destination: join(dir, "dest"),
      recursive: true,
      verify: "sha256",
    });
    expect(result).toMatchObject({ files: 12, verified: true });
    for (const folder of ["", "x", "x/y"]) expect(await leftovers(join(dir, "dest", folder))).toEqual([]);
    for (let i = 0; i < 12; i++) {
      const path = join(i % 3 === 0 ? "" : i % 3 === 1 ? "x" : "x/y", `f${i}`);
      expect(await readFile(join(dir, "dest", path))).toEqual(await readFile(join(src, path)));
    }
  });
});
