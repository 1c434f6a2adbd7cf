/**
 * One file on its way up: sent to its temp name with the transport's `upload`, its sha256 (with `verify`) taken from
 * the bytes the transport read as it sent them (`UploadRequest.onData`), so a verified upload reads its file once.
 */
import { stat } from "node:fs/promises";
import type { Stats } from "node:fs";
import { posix } from "node:path";
import { ConnectError, TransferError } from "../errors.js";
import type { Connection } from "../transport.js";
import type { Progress } from "../types.js";
import type { TransferContext } from "./context.js";
import { StreamHash } from "./local-hash.js";
import { tempName } from "./temp-names.js";

export interface Outgoing {
  readonly local: string;
  readonly destination: string;
  readonly temp: string;
  readonly size: number;
  readonly mode: number | undefined;
  /** The temp file sits in a staging folder under its final name (trees), rather than beside the destination. */
  readonly staged: boolean;
  /** The sha256 of the bytes sent (with `verify`), set once they are sent. */
  localHash?: string;
}

/** A file to send to a temp name beside its destination, or (with `stage`) into that staging folder of its own folder. */
export function outgoing(local: string, destination: string, size: number, mode: number | undefined, stage?: string): Outgoing {
  const temp = stage === undefined ? tempName(destination) : posix.join(posix.dirname(destination), stage, posix.basename(destination));
  return { local, destination, temp, size, mode, staged: stage !== undefined };
}

/**
 * One file's bytes through the transport, ended by the connection's loss at the latest: a transport's byte mover
 * that missed the loss would otherwise hold the transfer (and the executor's retry) until the timeout.
 */
export function moveBytes(connection: Connection, move: () => Promise<void>): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const stop = connection.onClose((error) =>
      reject(error ?? new ConnectError("the connection closed during the transfer", { lost: true, phase: "transfer", target: connection.target })),
    );
    move().then(
      () => {
        stop();
        resolve();
      },
      (error: unknown) => {
        stop();
        reject(error);
      },
    );
  });
}

/** Whether the local file is the one that was there before the send: same file, size and modification time. */
const unchanged = (before: Stats, after: Stats): boolean => before.ino === after.ino && before.size === after.size && before.mtimeMs === after.mtimeMs;

/**
 * Send one file's bytes to its temp name. With `verify`, the bytes sent are hashed on the way; a file that changed
 * while it was sent (its hash would vouch for a mix of two versions) is sent once more, then fails.
 */
export async function sendFile(context: TransferContext, item: Outgoing, verify: boolean, onProgress: (progress: Progress) => void): Promise<void> {
  for (let round = 1; ; round++) {
    const before = verify ? await stat(item.local) : undefined;
    let hash: StreamHash | undefined;
    await context.channel.run((connection) => {
      // A fresh hash per channel: a refused one's attempt may have been handed bytes already.
      hash = verify ? new StreamHash() : undefined;
      const hashing = hash;
      return moveBytes(connection, () =>
        connection.upload({
          localPath: item.local,
          remotePath: item.temp,
          signal: context.signal,
          onProgress,
          ...(item.mode !== undefined ? { mode: item.mode } : {}),
          ...(hashing ? { onData: (chunk: Uint8Array) => hashing.update(chunk) } : {}),
        }),
      );
    });
    if (!before || !hash) return;
    if (unchanged(before, await stat(item.local))) {
      item.localHash = await hash.digestOf(item.local, context.signal);
      return;
    }
    if (round >= 2) throw new TransferError(`${item.local} changed while it was uploaded, twice`, { target: context.target });
  }
}
