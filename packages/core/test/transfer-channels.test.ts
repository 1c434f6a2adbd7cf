import { randomBytes } from "node:crypto";
import { mkdir, mkdtemp, readFile, readdir, readlink, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { FakeConnection } from "@tunnel-sh/testing";
import { MAX_CHANNEL_REFUSALS } from "../src/channel-budget.js";
import { DefaultExecutorConfig } from "../src/config.js";
import { TransferError } from "../src/errors.js";
import { Executor } from "../src/executor.js";
import type { Lease, Pool } from "../src/pool.js";
import type { Connection, UploadRequest } from "../src/transport.js";
import { fakePool } from "./support/fake-pool.js";

// Transfers and the pool's channel budget: every step of a transfer opens a channel, and a refused one goes back to
// the pool (its budget learns) while the step moves to another lease, as a command's does. The "remote" side is this
// machine through the testing kit's FakeTransport running local shells.
const config = DefaultExecutorConfig().with({ retryBackoff: 1, maxRetryDelay: 5, retryJitter: 0 });
const host = { host: "local", user: "tester" };
let dir: string;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "tunnel-transfer-channels-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("transfers and the channel budget", () => {
  it("hands each refused step's lease back to the pool as refused and moves the step to a new lease", async () => {
    const data = randomBytes(100_000);
    await writeFile(join(dir, "src"), data);
    const pool = fakePool();
    const connection = (await pool.current()) as FakeConnection;
    // The first remote command (the destination check) is refused once.
    connection.refuseNextSpawns(1);
    const executor = new Executor(pool, config);
    const transfer = executor.transferFile({ ...host, direction: "upload", source: join(dir, "src"), destination: join(dir, "dest"), verify: "sha256" });
    const result = await transfer;
    expect(result).toMatchObject({ attempts: 1, files: 1, verified: true });
    expect(await readFile(join(dir, "dest"))).toEqual(data);
    // One refusal, handed to the pool; the transfer went on over a second lease, which it released at the end.
    expect(pool.refusals).toHaveLength(1);
    expect(pool.acquired).toHaveLength(2);
    expect(pool.released).toHaveLength(1);
    expect(pool.destroyed).toEqual([]);
  });

  it("moves refusals of every kind of step: a tree's listing, staging, renames, links and modes", async () => {
    const src = join(dir, "tree");
    await mkdir(join(src, "sub"), { recursive: true });
    for (const name of ["a", "b", "sub/c"]) await writeFile(join(src, name), `content of ${name}`);
    await symlink("a", join(src, "link"));
    const pool = fakePool();
    const connection = (await pool.current()) as FakeConnection;
    const executor = new Executor(pool, config);
    // Every remote command of the upload is refused the first time it is sent.
    const seen = new Set<string>();
    const spawn = connection.spawn.bind(connection);
    connection.spawn = (request) => {
      if (!seen.has(request.command)) {
        seen.add(request.command);
        connection.refuseNextSpawns(1);
      }
      return spawn(request);
    };
    const result = await executor.transferFile({ ...host, direction: "upload", source: src, destination: join(dir, "dest"), recursive: true });
    expect(result).toMatchObject({ attempts: 1, files: 3 });
    expect(await readFile(join(dir, "dest", "sub", "c"), "utf8")).toBe("content of sub/c");
    expect(await readlink(join(dir, "dest", "link"))).toBe("a");
    // mkdir, the listing (and its probe), staging folders, the rename, rmdir, links, folder modes: each refused once.
    expect(seen.size).toBeGreaterThanOrEqual(7);
    expect(pool.refusals).toHaveLength(seen.size);
  });

  it(`fails a transfer after ${MAX_CHANNEL_REFUSALS} refusals in one attempt, with the refusal`, async () => {
    await writeFile(join(dir, "src"), "bytes");
    const pool = fakePool();
    const connection = (await pool.current()) as FakeConnection;
    connection.refuseNextSpawns(MAX_CHANNEL_REFUSALS + 1);
    const executor = new Executor(pool, config.with({ maxRetries: 0 }));
    const error = await executor
      .transferFile({ ...host, direction: "upload", source: join(dir, "src"), destination: join(dir, "dest") })
      .catch((caught: unknown) => caught);
    expect(error).toMatchObject({ code: "CHANNEL", refused: true });
    expect(pool.refusals).toHaveLength(MAX_CHANNEL_REFUSALS + 1);
    expect(await readdir(dir)).toEqual(["src"]);
  });

  it("hashes a verified download on the host after the bytes moved when the pool lends no second channel", async () => {
    const data = randomBytes(200_000);
    await writeFile(join(dir, "remote.bin"), data);
    const pool = oneChannelPool(fakePool());
    const result = await new Executor(pool, config).transferFile({
      ...host,
      direction: "download",
      source: join(dir, "remote.bin"),
      destination: join(dir, "copy"),
      verify: "sha256",
    });
    expect(result).toMatchObject({ verified: true, files: 1 });
    expect(await readFile(join(dir, "copy"))).toEqual(data);
    expect(pool.most).toBe(1);
  });
});

describe("verified uploads hash the bytes sent", () => {
  it("takes the hash from the bytes the transport hands over: a flipped byte in them is a mismatch", async () => {
    const data = randomBytes(50_000);
    await writeFile(join(dir, "src"), data);
    const pool = fakePool();
    const local = await pool.current();
    const upload = async (request: UploadRequest): Promise<void> => {
      // The file lands intact, but what is handed over as sent has its first byte flipped.
      await local.upload({ ...request, onData: (chunk) => request.onData?.(flipFirst(chunk)) });
    };
    let flipped = false;
    const flipFirst = (chunk: Uint8Array): Uint8Array => {
      if (flipped) return chunk;
      flipped = true;
      const copy = Buffer.from(chunk);
      copy[0] = (copy[0] ?? 0) ^ 0xff;
      return copy;
    };
    pool.connection = withUpload(local, upload);
    const executor = new Executor(pool, config);
    // The first send's hash differs from what landed; the second send's matches.
    const result = await executor.transferFile({ ...host, direction: "upload", source: join(dir, "src"), destination: join(dir, "dest"), verify: "sha256" });
    expect(result).toMatchObject({ verified: true });
    expect(flipped).toBe(true);
    expect(await readFile(join(dir, "dest"))).toEqual(data);
    expect(pool.transport.callsOf("upload")).toHaveLength(2);
  });

  it("sends a file again when it changed while it was sent, and fails when it changes every time", async () => {
    await writeFile(join(dir, "src"), randomBytes(20_000));
    const pool = fakePool();
    const local = await pool.current();
    let changes = 1;
    pool.connection = withUpload(local, async (request) => {
      await local.upload(request);
      if (changes > 0) {
        changes -= 1;
        // Same size, new content, after the transport read it.
        await writeFile(request.localPath, randomBytes(20_000));
      }
    });
    const executor = new Executor(pool, config);
    await executor.transferFile({ ...host, direction: "upload", source: join(dir, "src"), destination: join(dir, "dest"), verify: "sha256" });
    expect(await readFile(join(dir, "dest"))).toEqual(await readFile(join(dir, "src")));
    expect(pool.transport.callsOf("upload")).toHaveLength(2);

    changes = Number.POSITIVE_INFINITY;
    const error = await new Executor(pool, config.with({ maxRetries: 0 }))
      .transferFile({ ...host, direction: "upload", source: join(dir, "src"), destination: join(dir, "again"), verify: "sha256" })
      .catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(TransferError);
    expect((error as Error).message).toMatch(/changed while it was uploaded/);
    expect((await readdir(dir)).sort()).toEqual(["dest", "src"]);
  });
});

describe("cleanup after a failed transfer", () => {
  it("gives up removing temp files over another connection once the executor's cleanupTimeout is spent", async () => {
    await writeFile(join(dir, "src"), randomBytes(10_000));
    const inner = fakePool();
    const local = (await inner.current()) as FakeConnection;
    inner.connection = withUpload(local, async () => {
      local.drop();
      await new Promise(() => {});
    });
    // The first acquire gets the connection that is lost; every later one (the cleanup's) waits until its signal ends it.
    const ended: unknown[] = [];
    let acquires = 0;
    const pool: Pool = {
      ...inner,
      async acquire(target, options) {
        acquires += 1;
        if (acquires === 1) return inner.acquire(target, options);
        return new Promise<Lease>((_, reject) =>
          options?.signal?.addEventListener(
            "abort",
            () => {
              ended.push(options.signal?.reason);
              reject(options.signal?.reason);
            },
            { once: true },
          ),
        );
      },
    };
    const executor = new Executor(pool, config.with({ maxRetries: 0 }), undefined, { cleanupTimeout: 100 });
    const error = await executor
      .transferFile({ ...host, direction: "upload", source: join(dir, "src"), destination: join(dir, "dest") })
      .catch((caught: unknown) => caught);
    expect(error).toMatchObject({ code: "CONNECTION_LOST" });
    // The cleanup asked for another connection and stopped waiting at its own budget, not at the operation's end.
    expect(ended.length).toBeGreaterThan(0);
    expect(ended.every((reason) => (reason as Error).name === "TimeoutError")).toBe(true);
  });
});

/** The connection with its `upload` replaced. */
function withUpload(connection: Connection, upload: (request: UploadRequest) => Promise<void>): Connection {
  return new Proxy(connection, {
    get(target, property) {
      if (property === "upload") return upload;
      const value: unknown = Reflect.get(target, property, target);
      return typeof value === "function" ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  });
}

/** A pool that lends one channel at a time (a budget of one): a second acquire waits for the first lease to return. */
function oneChannelPool(inner: Pool): Pool & { readonly most: number } {
  let out = 0;
  let most = 0;
  const waiters: (() => void)[] = [];
  const wrap = (lease: Lease): Lease => {
    let done = false;
    const back = () => {
      if (done) return;
      done = true;
      out -= 1;
      waiters.shift()?.();
    };
    return {
      connection: lease.connection,
      key: lease.key,
      release: () => (back(), lease.release()),
      destroy: (reason) => (back(), lease.destroy(reason)),
      refused: () => (back(), lease.refused?.()),
    };
  };
  return {
    get most() {
      return most;
    },
    async acquire(target, options) {
      while (out >= 1) {
        options?.signal?.throwIfAborted();
        await new Promise<void>((resolve, reject) => {
          waiters.push(resolve);
          options?.signal?.addEventListener("abort", () => reject(options.signal?.reason), { once: true });
        });
      }
      out += 1;
      most = Math.max(most, out);
      return wrap(await inner.acquire(target, options));
    },
    stats: () => inner.stats(),
    close: () => inner.close(),
    destroy: (error) => inner.destroy(error),
  };
}
