/**
 * A Connection whose processes are local `/bin/sh -c` children: real streams, real exit codes and signals,
 * no network. For unit tests of logic above the transport interface (core's derived run).
 */
import { spawn } from "node:child_process";
import { createReadStream, createWriteStream } from "node:fs";
import { stat } from "node:fs/promises";
import { pipeline } from "node:stream/promises";
import type { Progress } from "../../src/types.js";
import { AbortError, ConnectError } from "../../src/errors.js";
import type { Connection, ExitStatus, RemoteProcess, SpawnRequest } from "../../src/transport.js";

export function localConnection(): Connection & { readonly spawned: string[] } {
  const spawned: string[] = [];
  const closeListeners = new Set<() => void>();
  let closed = false;
  return {
    transport: "local",
    target: { host: "localhost" },
    capabilities: { pty: false, signals: true, transfer: false },
    maxChannels: 10,
    get closed() {
      return closed;
    },
    spawned,
    spawn(request: SpawnRequest): RemoteProcess {
      spawned.push(request.command);
      const child = spawn("/bin/sh", ["-c", request.command], { detached: true, stdio: "pipe" });
      const kill = async (signal = "SIGTERM") => {
        try {
          if (child.pid !== undefined) process.kill(-child.pid, signal as NodeJS.Signals);
        } catch {
          // already gone
        }
      };
      const exit = new Promise<ExitStatus>((resolve, reject) => {
        let aborted = false;
        request.signal?.addEventListener(
          "abort",
          () => {
            aborted = true;
            void kill("SIGTERM");
            setTimeout(() => void kill("SIGKILL"), 500).unref();
          },
          { once: true },
        );
        child.on("error", (error) => reject(new ConnectError("spawn failed", { cause: error, lost: true })));
        child.on("close", (code, signal) => {
          if (aborted) reject(new AbortError());
          else resolve({ exitCode: code, signal });
        });
      });
      return {
        stdin: child.stdin,
        stdout: child.stdout,
        stderr: child.stderr,
        started: Promise.resolve(),
        exit,
        kill,
      };
    },
    async upload(request) {
      await copyWithProgress(request.localPath, request.remotePath, request.onProgress, request.mode);
    },
    async download(request) {
      await copyWithProgress(request.remotePath, request.localPath, request.onProgress);
    },
    async ping() {},
    async close() {
      closed = true;
      for (const listener of closeListeners) listener();
    },
    onClose(listener) {
      closeListeners.add(listener);
      return () => closeListeners.delete(listener);
    },
  };
}

/** Is a local process still alive (not a zombie)? */
export async function alive(pid: number): Promise<boolean> {
  try {
    const { readFile } = await import("node:fs/promises");
    const stat = await readFile(`/proc/${pid}/stat`, "utf8");
    return !/^\d+ \(.*\) Z/.test(stat);
  } catch {
    return false;
  }
}

/** Copies a file in chunks, reporting progress like a transport does. `corrupt` flips the first byte of the next copies. */
/** Resolves to true once `pid` has exited, or false after `ms` (a hang guard, far above how long an exit takes). */
export async function exits(pid: number, ms = 20_000): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (await alive(pid)) {
    if (Date.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return true;
}

export const localTransferFaults = { corruptNext: 0, loseNext: 0 };

async function copyWithProgress(from: string, to: string, onProgress?: (progress: Progress) => void, mode?: number): Promise<void> {
  const total = (await stat(from)).size;
  let bytes = 0;
  let first = true;
  const corrupt = localTransferFaults.corruptNext > 0;
  if (corrupt) localTransferFaults.corruptNext -= 1;
  const lose = localTransferFaults.loseNext > 0;
  if (lose) localTransferFaults.loseNext -= 1;
  await pipeline(
    createReadStream(from, { highWaterMark: 64 * 1024 }),
    async function* (source: AsyncIterable<Buffer>) {
      for await (const chunk of source) {
        bytes += chunk.length;
        onProgress?.({ bytes, total, rate: 0 });
        if (lose && bytes > total / 2) throw new ConnectError("the connection was lost", { lost: true });
        if (first && corrupt && chunk.length > 0) {
          first = false;
          const copy = Buffer.from(chunk);
          copy[0] = (copy[0] ?? 0) ^ 0xff;
          yield copy;
        } else yield chunk;
      }
    },
    createWriteStream(to, mode !== undefined ? { mode } : {}),
  );
}
