/**
 * The transfer cases of the conformance suite (the `transfer` group): a connection's `upload` and `download` as
 * the Transport contract defines them (one file's bytes, a new file's mode, truncation of an existing one, progress,
 * typed errors, aborts), then core's transfers derived from them (`Executor.transferFile`: atomic renames, sha256
 * verification, modes and the overwrite policies), which every transport gets for free once its primitives behave.
 */
import { createHash, randomBytes } from "node:crypto";
import { mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  AbortError,
  DefaultExecutorConfig,
  Executor,
  TunnelError,
  quote,
  runProcess,
  type Connection,
  type Lease,
  type Pool,
  type PoolStats,
  type Progress,
} from "@tunnel-sh/core";
import { MiB, outcome, type SuiteConnections } from "./conformance-helpers.js";
import type { TestRunner } from "./transport-conformance.js";

interface RemoteFile {
  readonly size: number;
  /** Permission bits, e.g. `0o640`. */
  readonly mode: number;
  readonly sha256: string;
}

const sha256 = (bytes: Uint8Array): string => createHash("sha256").update(bytes).digest("hex");

/** A pool over connections of the transport under test: what an Executor needs, without the pool package. */
function connectionPool(connect: () => Promise<Connection>): Pool {
  let current: Promise<Connection> | undefined;
  const stats: PoolStats = {
    connections: 1,
    busyChannels: 0,
    idleConnections: 0,
    waiting: 0,
    created: 1,
    evicted: {},
    keys: {},
    acquireWaitMs: { count: 0, p50: 0, p95: 0, max: 0 },
  };
  return {
    async acquire(target, options) {
      if (options?.signal?.aborted) throw new AbortError(undefined, { target });
      let connection = await (current ??= connect());
      if (connection.closed) connection = await (current = connect());
      const lease: Lease = {
        connection,
        key: "conformance",
        release() {},
        destroy() {
          if (current) current = undefined;
          void connection.close();
        },
        refused() {},
      };
      return lease;
    },
    stats: () => stats,
    async close() {},
    async destroy() {},
  };
}

/** Every report's bytes never decrease, stay within the size, and the last one is exactly the size. */
function progressProblems(reports: readonly Progress[], size: number): string[] {
  const problems: string[] = [];
  if (reports.length === 0) return ["no progress was reported"];
  reports.forEach((report, index) => {
    const previous = reports[index - 1];
    if (previous && report.bytes < previous.bytes) problems.push(`report ${index} went back from ${previous.bytes} to ${report.bytes}`);
    if (report.bytes > size) problems.push(`report ${index} is past the size: ${report.bytes} > ${size}`);
    if (report.total !== undefined && report.total !== size) problems.push(`report ${index} has total ${report.total}, not ${size}`);
  });
  const last = reports.at(-1);
  if (last?.bytes !== size) problems.push(`the last report is ${last?.bytes}, not the size ${size}`);
  return problems;
}

export function describeTransferCases(suite: SuiteConnections, runner: TestRunner): void {
  const { describe, it, expect, beforeAll, afterAll } = runner;
  let local = "";
  let remote = "";

  /** Run a shell command on the server; it must succeed. */
  const onServer = async (command: string): Promise<string> => {
    const result = await runProcess(await suite.usable(), { command, timeoutMs: 30_000 });
    expect(result.exitCode, `${command}: ${result.stderr}`).toBe(0);
    return result.stdout;
  };
  /** Size, mode and sha256 of a file on the server, or undefined when there is none. */
  const remoteFile = async (path: string): Promise<RemoteFile | undefined> => {
    const p = quote(path);
    const line = (
      await onServer(
        `if [ -f ${p} ]; then printf '%s %s ' "$(wc -c < ${p} | tr -d ' ')" "$(stat -c %a ${p})"; sha256sum < ${p} | cut -d' ' -f1; else echo missing; fi`,
      )
    ).trim();
    if (line === "missing") return undefined;
    const [size = "", mode = "", hash = ""] = line.split(" ");
    return { size: Number(size), mode: Number.parseInt(mode, 8), sha256: hash };
  };
  const localFile = async (name: string, bytes: Uint8Array): Promise<string> => {
    const path = join(local, name);
    await writeFile(path, bytes);
    return path;
  };
  /** A file on the server with these bytes (written through the shell, not the transport under test). */
  const serverFile = async (name: string, bytes: Uint8Array, mode = 0o644): Promise<string> => {
    const path = `${remote}/${name}`;
    const connection = await suite.usable();
    const result = await runProcess(connection, {
      command: `cat > ${quote(path)} && chmod ${mode.toString(8)} ${quote(path)}`,
      stdin: Buffer.from(bytes),
      timeoutMs: 30_000,
    });
    expect(result.exitCode, result.stderr).toBe(0);
    return path;
  };
  const serverNames = async (): Promise<string[]> => (await onServer(`ls -A ${quote(remote)}`)).split("\n").filter((name) => name !== "");
  const executor = (): Executor =>
    new Executor(
      connectionPool(() => suite.fresh()),
      DefaultExecutorConfig(),
    );
  const at = () => {
    const { host, port, user } = suite.context().target;
    return { host, ...(port !== undefined ? { port } : {}), ...(user !== undefined ? { user } : {}) };
  };

  describe("transfers (capabilities.transfer)", () => {
    beforeAll(async () => {
      local = await mkdtemp(join(tmpdir(), "tunnel-conformance-"));
      remote = (await onServer("mktemp -d /tmp/tunnel-conformance.XXXXXX")).trim();
    }, 60_000);

    afterAll(async () => {
      if (local) await rm(local, { recursive: true, force: true });
      if (remote) await onServer(`rm -rf -- ${quote(remote)}`).catch(() => {});
    }, 60_000);

    it("declares capabilities.transfer", async () => {
      expect((await suite.usable()).capabilities.transfer).toBe(true);
    });

    it("uploads files byte for byte: empty, one byte, and 5 MiB holding every byte value", async () => {
      const connection = await suite.usable();
      const every = Buffer.from(Array.from({ length: 256 }, (_, byte) => byte));
      const payloads = { empty: Buffer.alloc(0), one: Buffer.from([0]), large: Buffer.concat([every, randomBytes(5 * MiB)]) };
      for (const [name, bytes] of Object.entries(payloads)) {
        const remotePath = `${remote}/up-${name}`;
        await connection.upload({ localPath: await localFile(`up-${name}`, bytes), remotePath });
        expect(await remoteFile(remotePath), name).toMatchObject({ size: bytes.length, sha256: sha256(bytes) });
      }
    }, 60_000);

    it("gives a new file the requested mode, and truncates an existing file, keeping its mode", async () => {
      const connection = await suite.usable();
      const fresh = `${remote}/mode-new`;
      const payload = randomBytes(1000);
      await connection.upload({ localPath: await localFile("mode-new", payload), remotePath: fresh, mode: 0o600 });
      expect(await remoteFile(fresh)).toEqual({ size: 1000, mode: 0o600, sha256: sha256(payload) });

      const existing = await serverFile("mode-existing", randomBytes(64 * 1024), 0o640);
      const shorter = randomBytes(100);
      await connection.upload({ localPath: await localFile("mode-existing", shorter), remotePath: existing, mode: 0o600 });
      expect(await remoteFile(existing)).toEqual({ size: 100, mode: 0o640, sha256: sha256(shorter) });
    });

    it("reports upload progress that never decreases and ends at exactly the file's size", async () => {
      const size = 8 * MiB + 7;
      const reports: Progress[] = [];
      await (
        await suite.usable()
      ).upload({
        localPath: await localFile("progress-up", randomBytes(size)),
        remotePath: `${remote}/progress-up`,
        onProgress: (progress) => reports.push(progress),
      });
      expect(progressProblems(reports, size)).toEqual([]);
    }, 60_000);

    it("hands an upload's bytes to onData as it sends them: in file order, each byte once", async () => {
      const bytes = randomBytes(5 * MiB + 3);
      const chunks: Buffer[] = [];
      const remotePath = `${remote}/on-data-up`;
      await (
        await suite.usable()
      ).upload({
        localPath: await localFile("on-data-up", bytes),
        remotePath,
        // The chunk is valid only during the call: keep a copy.
        onData: (chunk) => chunks.push(Buffer.from(chunk)),
      });
      const handed = Buffer.concat(chunks);
      expect(handed.length).toBe(bytes.length);
      expect(handed.equals(bytes)).toBe(true);
      expect(await remoteFile(remotePath)).toMatchObject({ size: bytes.length, sha256: sha256(bytes) });
    }, 60_000);

    it("downloads remote files to a local path byte for byte, replacing a longer local file", async () => {
      const connection = await suite.usable();
      for (const [name, bytes] of Object.entries({ empty: Buffer.alloc(0), large: randomBytes(5 * MiB + 1) })) {
        const localPath = await localFile(`down-${name}`, randomBytes(6 * MiB));
        await connection.download({ remotePath: await serverFile(`down-${name}`, bytes), localPath });
        const copied = await readFile(localPath);
        expect(copied.length, name).toBe(bytes.length);
        expect(copied.equals(bytes), name).toBe(true);
      }
    }, 60_000);

    it("reports download progress that never decreases and ends at exactly the file's size", async () => {
      const size = 8 * MiB + 7;
      const reports: Progress[] = [];
      await (
        await suite.usable()
      ).download({
        remotePath: await serverFile("progress-down", randomBytes(size)),
        localPath: join(local, "progress-down"),
        onProgress: (progress) => reports.push(progress),
      });
      expect(progressProblems(reports, size)).toEqual([]);
    }, 60_000);

    it("fails with a TransferError for a missing local file, a missing remote file and a missing remote folder", async () => {
      const connection = await suite.usable();
      const orphan = await localFile("orphan", randomBytes(10));
      const failures = {
        "missing local file": () => connection.upload({ localPath: join(local, "no-such-file"), remotePath: `${remote}/never` }),
        "missing remote folder": () => connection.upload({ localPath: orphan, remotePath: `${remote}/no-such-folder/file` }),
        "missing remote file": () => connection.download({ remotePath: `${remote}/no-such-file`, localPath: join(local, "never") }),
      };
      for (const [what, failing] of Object.entries(failures)) {
        const { error } = await outcome(failing());
        expect(TunnelError.is(error), `${what}: a TunnelError, got ${String(error)}`).toBe(true);
        expect((error as TunnelError).code, `${what}: ${String(error)}`).toBe("TRANSFER");
      }
      expect(await remoteFile(`${remote}/never`)).toBeUndefined();
      await suite.expectStillUsable(connection);
    });

    it("rejects a transfer whose signal has already aborted with AbortError, creating nothing", async () => {
      const connection = await suite.usable();
      const signal = AbortSignal.abort();
      const upload = await outcome(connection.upload({ localPath: await localFile("aborted", randomBytes(10)), remotePath: `${remote}/aborted`, signal }));
      expect((upload.error as TunnelError | undefined)?.code).toBe("ABORTED");
      expect(await remoteFile(`${remote}/aborted`)).toBeUndefined();
      const download = await outcome(
        connection.download({ remotePath: await serverFile("aborted-source", randomBytes(10)), localPath: join(local, "aborted-copy"), signal }),
      );
      expect((download.error as TunnelError | undefined)?.code).toBe("ABORTED");
      expect(await stat(join(local, "aborted-copy")).catch(() => undefined)).toBeUndefined();
      await suite.expectStillUsable(connection);
    });

    describe("core's transfers over these primitives (Executor.transferFile)", () => {
      it("uploads atomically: interrupted, the destination holds the old or the new bytes, never a part, and no temp file is left", async () => {
        const old = randomBytes(1000);
        const destination = await serverFile("atomic", old);
        const fresh = randomBytes(32 * MiB);
        const controller = new AbortController();
        const { error } = await outcome(
          executor().transferFile({
            ...at(),
            direction: "upload",
            source: await localFile("atomic", fresh),
            destination,
            signal: controller.signal,
            onProgress: () => controller.abort(),
          }),
          60_000,
        );
        expect(error === undefined || (error as TunnelError).code === "ABORTED", `aborted or done: ${String(error)}`).toBe(true);
        const after = await remoteFile(destination);
        expect([sha256(old), sha256(fresh)]).toContain(after?.sha256);
        expect((await serverNames()).filter((name) => name.includes(".part"))).toEqual([]);
      }, 90_000);

      it("verifies an upload with sha256 and applies the mode before it is in place", async () => {
        const payload = randomBytes(3 * MiB);
        const destination = `${remote}/verified`;
        const result = await executor().transferFile({
          ...at(),
          direction: "upload",
          source: await localFile("verified", payload),
          destination,
          mode: "0640",
          verify: "sha256",
        });
        expect(result).toMatchObject({ bytes: payload.length, files: 1, skipped: 0, verified: true });
        expect(await remoteFile(destination)).toEqual({ size: payload.length, mode: 0o640, sha256: sha256(payload) });
      }, 60_000);

      it("follows the overwrite policies: replace (the default), skip and error, both ways", async () => {
        const old = randomBytes(500);
        const fresh = randomBytes(700);
        const source = await localFile("policy-source", fresh);
        const runs = executor();
        for (const overwrite of ["replace", "skip", "error"] as const) {
          const destination = await serverFile(`policy-${overwrite}`, old);
          const { error } = await outcome(runs.transferFile({ ...at(), direction: "upload", source, destination, overwrite }));
          const expected = overwrite === "replace" ? fresh : old;
          expect((await remoteFile(destination))?.sha256, `upload, ${overwrite}`).toBe(sha256(expected));
          expect((error as TunnelError | undefined)?.code, `upload, ${overwrite}`).toBe(overwrite === "error" ? "TRANSFER" : undefined);

          const remoteSource = await serverFile(`policy-down-${overwrite}`, fresh);
          const localPath = await localFile(`policy-down-${overwrite}`, old);
          const down = await outcome(runs.transferFile({ ...at(), direction: "download", source: remoteSource, destination: localPath, overwrite }));
          expect(sha256(await readFile(localPath)), `download, ${overwrite}`).toBe(sha256(expected));
          expect((down.error as TunnelError | undefined)?.code, `download, ${overwrite}`).toBe(overwrite === "error" ? "TRANSFER" : undefined);
        }
      }, 60_000);

      it("downloads to a local path, verified, with progress ending at the total", async () => {
        const payload = randomBytes(4 * MiB + 5);
        const reports: Progress[] = [];
        const localPath = join(local, "derived-download");
        const result = await executor().transferFile({
          ...at(),
          direction: "download",
          source: await serverFile("derived-download", payload),
          destination: localPath,
          verify: "sha256",
          onProgress: (progress) => reports.push(progress),
        });
        expect(result).toMatchObject({ bytes: payload.length, files: 1, verified: true });
        expect((await readFile(localPath)).equals(payload)).toBe(true);
        expect(progressProblems(reports, payload.length)).toEqual([]);
      }, 60_000);
    });
  });
}
