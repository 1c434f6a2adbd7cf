/**
 * Checks shared by every constructor and factory of tunnel's packages: an options object holds only the keys its
 * owner knows. A misspelt or renamed option is a `ConfigError` naming it, before any I/O, instead of being ignored
 * and showing up later as a puzzling default.
 */
import { ConfigError } from "./errors.js";

/** Extra hints for `rejectUnknownOptions`. */
export interface UnknownOptionHints {
  /**
   * Option names that were renamed, old name → new name. An old name is still refused; the error says the new one.
   * @example { privateKey: "identityFile" }
   */
  readonly renamed?: Readonly<Record<string, string>>;
  /**
   * Where the checked object sits in its owner's options, prefixed to the reported field.
   * @example "transfer" makes an unknown `size` the field `transfer.size`
   */
  readonly path?: string;
}

/** What a rejected value is, for messages: its kind, and a number or boolean itself; never a string, which may be a secret. */
export function describeOptionValue(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  if (value instanceof Uint8Array) return "bytes";
  if (typeof value === "number" || typeof value === "boolean") return `${typeof value} ${String(value)}`;
  return typeof value === "object" ? "an object" : typeof value;
}

/**
 * Throw a `ConfigError` when `options` is not a plain object, or holds a key that is not in `allowed`.
 * `undefined` passes (every option left at its default). The error's `field` is the offending key; its message names
 * `owner` (e.g. `"Ssh2Transport"`), says the new name of a renamed option, and suggests a known name for a typo.
 * Adapters call it first thing in their constructors.
 * @example rejectUnknownOptions(options, ["stream", "format"], "ConsoleTracer")
 */
export function rejectUnknownOptions(options: unknown, allowed: Iterable<string>, owner: string, hints: UnknownOptionHints = {}): void {
  if (options === undefined) return;
  const prefix = hints.path === undefined ? "" : `${hints.path}.`;
  if (typeof options !== "object" || options === null || Array.isArray(options)) {
    throw new ConfigError(hints.path ?? "options", `${owner} options must be an object, got ${describeOptionValue(options)}`);
  }
  const known = new Set(allowed);
  for (const key of Object.keys(options)) {
    if (known.has(key)) continue;
    const renamed = hints.renamed && Object.hasOwn(hints.renamed, key) ? hints.renamed[key] : undefined;
    if (renamed !== undefined && known.has(renamed)) {
      throw new ConfigError(`${prefix}${key}`, `is not an option of ${owner}: it is now called ${prefix}${renamed}`);
    }
    const near = nearest(key, known);
    throw new ConfigError(
      `${prefix}${key}`,
      `is not an option of ${owner}${near === undefined ? "" : ` (did you mean ${prefix}${near}?)`}; known options: ${[...known].join(", ")}`,
    );
  }
}

/** The known name closest to a misspelt one (case-insensitive edit distance of at most 2), if any. */
function nearest(key: string, known: ReadonlySet<string>): string | undefined {
  let best: string | undefined;
  let bestDistance = 3;
  for (const name of known) {
    const distance = editDistance(key.toLowerCase(), name.toLowerCase());
    if (distance < bestDistance) {
      best = name;
      bestDistance = distance;
    }
  }
  return best;
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, index) => index);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      current[j] = Math.min((previous[j] as number) + 1, (current[j - 1] as number) + 1, (previous[j - 1] as number) + cost);
    }
    previous = current;
  }
  return previous[b.length] as number;
}
