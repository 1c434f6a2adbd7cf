import { TransferError } from "../errors.js";
import type { Target, Transfer } from "../types.js";

/**
 * The `overwrite` policy for one destination, the same on both sides (`existing`: what is there — `"f"`, `"l"`, `"o"`,
 * `"d"` — or undefined). Returns true to skip it (`skip`); throws a `TransferError` for `error`, and for a folder
 * where a file should go; `replace` (the default) returns false and the rename replaces what is there.
 */
export function skipExisting(overwrite: Transfer["overwrite"], destination: string, existing: string | undefined, target: Target): boolean {
  if (existing === "d") throw new TransferError(`the destination ${destination} is a directory`, { target });
  if (existing === undefined) return false;
  if (overwrite === "skip") return true;
  if (overwrite === "error") throw new TransferError(`the destination ${destination} already exists (overwrite: "error")`, { target });
  return false;
}
