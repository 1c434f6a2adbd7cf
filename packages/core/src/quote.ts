/**
 * The one shell-quoting function. Every argument, env value, path and working dir that tunnel puts on a
 * remote command line goes through `quote`. POSIX single quotes keep every byte literal except `'` itself,
 * which is closed, escaped and reopened (`'\''`). Property tests run the output through a real `/bin/sh`.
 *
 * Written here rather than taken from a library: it is four lines, core has no runtime dependencies, and the
 * popular packages either quote for a different shell or leave some characters (`!`, newlines) unsafe.
 */

const SAFE = /^[A-Za-z0-9_/.,:=@%+-]+$/;

/**
 * Quote one word for a POSIX shell. The result, read by `sh`, is exactly `value`.
 * `value` must not contain NUL (no shell word can); validation rejects it before this is reached.
 * @example quote("it's") === "'it'\\''s'"; quote("ok") === "ok"; quote("") === "''"
 */
export function quote(value: string): string {
  if (value.includes("\0")) throw new TypeError("a shell word cannot contain a NUL byte");
  if (SAFE.test(value)) return value;
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

/** Quote each word and join with spaces: `quoteArgs(["ls", "-l", "my dir"]) === "ls -l 'my dir'"`. */
export function quoteArgs(words: readonly string[]): string {
  return words.map(quote).join(" ");
}
