/**
 * Remote sha256: `tunnel_hash` prints the sha256 of its stdin (`openssl dgst`, much faster than `sha256sum`, which is
 * the fallback — GNU's or busybox's — then BSD's `shasum -a 256`); `tunnel_check FILE HEX` succeeds when FILE hashes
 * to HEX. Reading stdin keeps file names out of the output.
 */
import { TransferError } from "../errors.js";
import { quote } from "../quote.js";
import type { TransferContext } from "./context.js";
import { chunked, remote } from "./remote-commands.js";

export const HASH_FUNCTIONS =
  "tunnel_hash() { if command -v openssl >/dev/null 2>&1; then openssl dgst -sha256 -r; elif command -v sha256sum >/dev/null 2>&1; then sha256sum; else shasum -a 256; fi; }; " +
  'tunnel_check() { tunnel_sum=$(tunnel_hash < "$1") || return 1; [ "${tunnel_sum%% *}" = "$2" ]; }';

/** The sha256 of each remote file, in order: one remote command per chunk of paths. */
export async function remoteHashes(context: TransferContext, paths: readonly string[]): Promise<string[]> {
  const hashes: string[] = [];
  for (const chunk of chunked(context, paths, quote)) {
    const result = await remote(
      context,
      `${HASH_FUNCTIONS}; for tunnel_file in ${chunk.map(quote).join(" ")}; do tunnel_sum=$(tunnel_hash < "$tunnel_file") || exit 1; printf '%s\\n' "\${tunnel_sum%% *}"; done`,
      "hashing the remote files",
    );
    const lines = result.stdout.split("\n").filter((line) => line !== "");
    if (lines.length !== chunk.length || !lines.every((line) => /^[0-9a-f]{64}$/.test(line))) {
      throw new TransferError("could not read the remote sha256", { target: context.target });
    }
    hashes.push(...lines);
  }
  return hashes;
}
