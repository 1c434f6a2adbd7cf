import { open } from "node:fs/promises";
import { userInfo } from "node:os";
import { PassThrough } from "node:stream";
import { describe, expect, it } from "vitest";
import type { Transport } from "@tunnel-sh/core";
import {
  describeTransportConformance,
  FakeTransport,
  localFileCopy,
  localShellReply,
  type ConformanceGroups,
  type FakeTransportOptions,
  type TransferReplyFunction,
  type SpawnHandler,
  type SpawnReplyFunction,
  type TestRunner,
} from "@tunnel-sh/testing";

type Body = () => Promise<void> | void;

interface Scope {
  readonly before: Body[];
  readonly after: Body[];
}

/**
 * Registers the suite with a recording runner, so a test can run one case against a deliberately broken transport:
 * a case runs with the hooks of the describes around it (outermost first; `afterAll` hooks innermost first).
 */
function suiteFor(options: FakeTransportOptions | (() => Transport), groups?: ConformanceGroups) {
  const cases = new Map<string, { body: Body; scopes: Scope[] }>();
  const scopes: Scope[] = [];
  const runner: TestRunner = {
    describe: (_name, body) => {
      scopes.push({ before: [], after: [] });
      body();
      scopes.pop();
    },
    it: (name, body) => cases.set(name, { body, scopes: [...scopes] }),
    expect,
    beforeAll: (body) => scopes.at(-1)?.before.push(body),
    afterAll: (body) => scopes.at(-1)?.after.push(body),
  };
  const transport = typeof options === "function" ? options : () => new FakeTransport(options);
  describeTransportConformance("broken", async () => ({ transport: transport(), target: { host: "localhost", user: userInfo().username } }), runner, groups);
  return {
    names: [...cases.keys()],
    /** Run the case whose name contains `name`; resolves with its failure (undefined when it passed). */
    async run(name: string): Promise<unknown> {
      const found = [...cases].find(([caseName]) => caseName.includes(name))?.[1];
      if (!found) throw new Error(`no case named like ${name}`);
      const ran: Scope[] = [];
      try {
        for (const scope of found.scopes) {
          ran.unshift(scope);
          for (const hook of scope.before) await hook();
        }
        await found.body();
        return undefined;
      } catch (error) {
        return error;
      } finally {
        for (const scope of ran) for (const hook of scope.after) await hook();
      }
    },
  };
}

/** localShellReply, but with the process changed by `change`. */
function brokenShell(change: (handler: SpawnHandler) => SpawnHandler): SpawnReplyFunction {
  return async (request, connection) => change((await localShellReply(request, connection)) as SpawnHandler);
}

describe("describeTransportConformance", () => {
  it("registers every case of the contract under one describe", () => {
    expect(suiteFor({ spawn: localShellReply }).names).toEqual([
      "connects to the target",
      "runs echo and collects its output",
      "reports exit codes 0, 1, 42 and 255 as data",
      "keeps stderr apart from stdout",
      "reports death by a signal as { exitCode: null, signal }",
      "streams 50 MiB of output to the listener while collecting only up to the cap",
      "completes a command whose output is past the cap on both streams",
      "is binary-safe: all 256 byte values come out, and go in and out, unchanged",
      "passes stdin from a string and from a large Buffer, then EOF",
      "allocates a pty on request: tty succeeds and lines end in \\r\\n",
      "runs maxChannels commands on one connection at the same time",
      "fails with a typed error within seconds when the connection drops mid-command",
      "stops the remote process when the request's signal aborts, and the connection stays usable",
      "stops the remote process on kill(), and the connection stays usable",
      "closes: idempotent, tells onClose once without an error, fails running and later processes",
      "delivers the signal kill() names: a trap for SIGINT runs and sets the exit code",
      "declares capabilities.transfer",
      "uploads files byte for byte: empty, one byte, and 5 MiB holding every byte value",
      "gives a new file the requested mode, and truncates an existing file, keeping its mode",
      "reports upload progress that never decreases and ends at exactly the file's size",
      "hands an upload's bytes to onData as it sends them: in file order, each byte once",
      "downloads remote files to a local path byte for byte, replacing a longer local file",
      "reports download progress that never decreases and ends at exactly the file's size",
      "fails with a TransferError for a missing local file, a missing remote file and a missing remote folder",
      "rejects a transfer whose signal has already aborted with AbortError, creating nothing",
      "uploads atomically: interrupted, the destination holds the old or the new bytes, never a part, and no temp file is left",
      "verifies an upload with sha256 and applies the mode before it is in place",
      "follows the overwrite policies: replace (the default), skip and error, both ways",
      "downloads to a local path, verified, with progress ending at the total",
      "answers on a live connection, one after another and several at once",
      "rejects with AbortError when its signal aborts, before or while it runs, and the connection stays healthy",
      "rejects with a connection error once the connection is closed",
      "rejects with a connection error once the server dropped the connection",
    ]);
  });

  it("replaces each group that is turned off with one case that checks the capability is not declared", async () => {
    const suite = suiteFor({ spawn: localShellReply }, { pty: false, signals: false, transfer: false });
    const off = ["declares no pty (the pty group is off)", "declares no signals (the signals group is off)"];
    const noTransfer = "declares no transfers (the transfer group is off), and upload and download reject with a TunnelError";
    expect(suite.names).toEqual(expect.arrayContaining([...off, noTransfer]));
    expect(suite.names.filter((name) => name.includes("pty on request") || name.includes("byte for byte") || name.includes("kill() names"))).toEqual([]);
    // The fake declares every capability: a group turned off for it fails, so flags and declarations agree.
    expect(String(await suite.run("declares no pty"))).toMatch(/AssertionError/);
    const honest = suiteFor({ spawn: localShellReply, capabilities: { transfer: false } }, { transfer: false });
    expect(await honest.run("declares no transfers")).toBeUndefined();
  });

  it("rejects an unknown group with a ConfigError naming it", () => {
    expect(() => suiteFor({ spawn: localShellReply }, { sftp: true } as ConformanceGroups)).toThrow(/sftp/);
  });

  it("fails a transport that loses exit codes", async () => {
    const suite = suiteFor({ spawn: { stdout: "code-0\n" } });
    expect(String(await suite.run("exit codes"))).toContain("exit 1");
  });

  it("fails a transport that merges stderr into stdout", async () => {
    const suite = suiteFor({ spawn: { stdout: "out\nerr\nmore\n" } });
    expect(String(await suite.run("stderr apart"))).toMatch(/AssertionError/);
  });

  it("fails a transport that reports a killed process as an exit code", async () => {
    const suite = suiteFor({ spawn: { exitCode: 143 } });
    expect(String(await suite.run("death by a signal"))).toContain("kill -TERM");
  });

  it("fails a transport whose abort leaves the remote process running", async () => {
    const suite = suiteFor({ spawn: brokenShell((handler) => ({ run: (io) => handler.run({ ...io, onKill: () => {} }) })) });
    const failure = await suite.run("signal aborts");
    expect(String(failure)).toMatch(/sleep \d+ is gone/);
  }, 30_000);

  it("fails a transport that corrupts bytes", async () => {
    const suite = suiteFor({
      spawn: brokenShell((handler) => ({
        run: (io) => {
          const { stdout } = io;
          const lossy = new PassThrough();
          lossy.on("data", (chunk: Buffer) => stdout.write(Buffer.from(chunk.toString("utf8"))));
          return Promise.resolve(handler.run({ ...io, stdout: lossy })).then(async (status) => {
            lossy.end();
            await new Promise((resolve) => setImmediate(resolve));
            return status;
          });
        },
      })),
    });
    expect(String(await suite.run("binary-safe"))).toMatch(/AssertionError/);
  });
});

/** Transfer replies that copy like localFileCopy but break one rule of the contract. */
const transfers = (upload: TransferReplyFunction, download: TransferReplyFunction = localFileCopy): FakeTransportOptions => ({
  spawn: localShellReply,
  upload,
  download,
});

describe("describeTransportConformance: transfers and ping", () => {
  it("fails a transport whose upload ignores the mode of a new file", async () => {
    const suite = suiteFor(transfers((request, connection, direction) => localFileCopy({ ...request, mode: 0o666 }, connection, direction)));
    expect(String(await suite.run("requested mode"))).toMatch(/AssertionError/);
  });

  it("fails a transport whose progress does not end at the file's size", async () => {
    const suite = suiteFor(
      transfers((request, connection, direction) =>
        localFileCopy(
          { ...request, onProgress: (progress) => progress.bytes < (progress.total ?? 0) && request.onProgress?.(progress) },
          connection,
          direction,
        ),
      ),
    );
    const failure = (await suite.run("upload progress")) as { actual?: unknown } | undefined;
    expect(String(failure?.actual)).toContain("the last report is");
  });

  it("fails a transport whose download leaves the tail of a longer local file", async () => {
    const overwriteInPlace: TransferReplyFunction = async (request) => {
      const source = await open(request.remotePath, "r");
      const destination = await open(request.localPath, "r+");
      try {
        await destination.write(await source.readFile(), 0, undefined, 0);
      } finally {
        await source.close();
        await destination.close();
      }
      return {};
    };
    const suite = suiteFor(transfers(localFileCopy, overwriteInPlace));
    expect(String(await suite.run("replacing a longer local file"))).toMatch(/AssertionError/);
  });

  it("fails a transport whose ping answers on a closed connection", async () => {
    const suite = suiteFor(() => {
      const fake = new FakeTransport({ spawn: localShellReply, upload: localFileCopy, download: localFileCopy });
      return {
        name: fake.name,
        connect: async (target, options) => {
          const connection = await fake.connect(target, options);
          connection.ping = async () => {};
          return connection;
        },
      };
    });
    expect(String(await suite.run("once the connection is closed"))).toContain("a TunnelError, got undefined");
  });
});
