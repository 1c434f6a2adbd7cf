/**
 * File and directory transfers, derived once for every transport from `Connection.upload`/`download` (one
 * file's bytes) and remote shell commands run through `runProcess`.
 *
 * - Atomic: each file is written under a temporary name in its destination folder and renamed over the
 *   destination only when complete (and verified), so an interrupted transfer never leaves a partial file under
 *   the destination name. A single file goes to `.<name>.tunnel-<nonce>.part` (`.tunnel-<nonce>.part` when the
 *   longer name would pass the 255-byte limit of a file name); the files of a tree go to a
 *   staging folder `.tunnel-<nonce>.part/<name>` inside their own folder, so one `mv` per folder renames them all
 *   (still one atomic rename(2) per file). Temporary files are removed on failure — over another connection from
 *   the pool when the transfer's own connection was lost (that connection then serves the executor's retry).
 *   A transfer's connection closing ends the transfer with `CONNECTION_LOST` even if the transport misses it.
 * - `overwrite`: `replace` (default) renames over an existing file (or a link there: the link is replaced, not
 *   written through); `skip` leaves it (counted in `skipped`); `error` fails with a `TransferError` before any
 *   byte moves (for a tree: before any file of the tree moves).
 * - `mode` is applied to the temporary file before the rename, `owner`/`group` after it (through sudo when the
 *   transfer asks for it; for a tree, to its folders, files and links). Without `mode`, a tree keeps each
 *   file's and folder's own mode; a single upload gets the server's default for new files.
 * - `verify: "sha256"`: an upload is hashed from the bytes the transport reads as it sends them
 *   (`UploadRequest.onData`), and the remote temp file is hashed on the host (`openssl dgst -sha256`, falling back to
 *   `sha256sum`) in the same remote command that renames it into place (a chunk of files per command for trees); a
 *   file that changed while it was sent is sent again. A download is hashed from the bytes the transport hands over
 *   as it writes the local copy (`DownloadRequest.onData`), beside the remote hash on a second channel when the pool
 *   lends one, so neither side reads its local file a second time. A mismatch re-sends the file once, then fails.
 * - Sources and links: a transfer's source that is a link is followed; a destination that is a link to a folder
 *   counts as that folder (as with `cp`). Inside a tree (`recursive: true`), symbolic links are recreated as links
 *   with the same target text — never followed, so a link cannot pull files from outside the tree (a link out of
 *   the tree may dangle on the other side). Folders (empty ones too) are created first, then files move with
 *   bounded parallelism. Other special files (sockets, devices, FIFOs) are skipped and counted.
 * - Progress: bytes done across the whole transfer, the total when known, the rate; never decreasing within an
 *   attempt, and the last report is exactly the total. A retried transfer reports again from 0.
 * - Channels: every step runs on the transfer's `ChannelLease`; a channel the server refused goes back to the pool's
 *   budget and the step moves to another lease (`channel-budget.ts`), as a command's does.
 *
 * Where things are (`transfer/`): `upload.ts` and `download.ts` (the two directions, files and trees), `outgoing.ts`
 * (sending one file), `upload-commit.ts` (verify and rename into place), `overwrite-policy.ts`, `local-hash.ts`
 * (hashing the bytes as they move), `remote-commands.ts`, `remote-files.ts` (kinds, tree listings, owners),
 * `remote-hash.ts`, `remote-cleanup.ts` (temp files after a failure), `local-files.ts`, `temp-names.ts`,
 * `progress-meter.ts`, `parallel-files.ts`, `tree-entry.ts`, `context.ts`.
 */
export { downloadTransfer } from "./transfer/download.js";
export { uploadTransfer } from "./transfer/upload.js";
export type { BorrowedChannel, TransferChannel, TransferContext, TransferOutcome } from "./transfer/context.js";
