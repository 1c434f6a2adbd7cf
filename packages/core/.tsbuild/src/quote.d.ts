/**
 * The one shell-quoting function. Every argument, env value, path and working dir that tunnel puts on a
 * remote command line goes through `quote`. POSIX single quotes keep every byte literal except `'` itself,
 * which is closed, escaped and reopened (`'\''`). Property tests run the output through a real `/bin/sh`.
 *
 * Written here rather than taken from a library: it is four lines, core has no runtime dependencies, and the
 * popular packages either quote for a different shell or leave some characters (`!`, newlines) unsafe.
 */
/**
 * Quote one word for a POSIX shell. The result, read by `sh`, is exactly `value`.
 * `value` must not contain NUL (no shell word can); validation rejects it before this is reached.
 * @example quote("it's") === "'it'\\''s'"; quote("ok") === "ok"; quote("") === "''"
 */
export declare function quote(value: string): string;
/** Quote each word and join with spaces: `quoteArgs(["ls", "-l", "my dir"]) === "ls -l 'my dir'"`. */
export declare function quoteArgs(words: readonly string[]): string;
//# sourceMappingURL=quote.d.ts.map