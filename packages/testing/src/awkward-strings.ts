/**
 * Strings meant to break shell quoting, for tests that prove a command line, an environment value or a path
 * arrives byte for byte: shell syntax, control characters, Unicode and leading dashes. None holds NUL, which no
 * shell word can hold.
 *
 * @example fc.string({ unit: fc.constantFrom(...AWKWARD_SHELL_CHARACTERS) })
 */

/** Single characters that shells treat specially, control characters and Unicode: an alphabet for fuzzed words. */
export const AWKWARD_SHELL_CHARACTERS: readonly string[] = [
  "'",
  '"',
  "$",
  "`",
  "\\",
  "\n",
  "\r",
  "\t",
  " ",
  "*",
  "?",
  "[",
  "]",
  "{",
  "}",
  "~",
  "!",
  "#",
  ";",
  "&",
  "|",
  "<",
  ">",
  "(",
  ")",
  "-",
  "=",
  "%",
  "\u001b",
  "\u007f",
  "é",
  "日",
  "✓",
  "\u{1f600}",
  "\u200b",
  "\u00a0",
];

/** Every awkward character, and the words made of them that quoting gets wrong: expansions, options, escapes. */
export const AWKWARD_SHELL_WORDS: readonly string[] = [
  ...AWKWARD_SHELL_CHARACTERS,
  "{a,b}",
  "--",
  "-n",
  "-e",
  "$(id)",
  "${HOME}",
  "$'x'",
  "%s",
  "\\n",
  "日本",
  "🙂",
  "'\\''",
];
