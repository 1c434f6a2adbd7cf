/**
 * Remote snippets for transfers over a plain exec channel (servers without the SFTP subsystem, and the openssh
 * transport's streamed path): the file's bytes travel as the command's stdin or stdout. POSIX sh with `cat`, `wc` and
 * `tr`, which behave alike in GNU coreutils, busybox and BSD for what is used here.
 */
import { quote } from "../quote.js";

/**
 * Write stdin to `remotePath`. A new file gets `mode` through the umask, like an SFTP open with attributes; an existing
 * one keeps its own. `exec`: a signal that kills `cat` is reported as that signal (a shell in between would turn it
 * into exit 128 + N).
 * @example streamUploadScript("/srv/a b", 0o640) // => "umask 137 && exec cat > '/srv/a b'"
 */
export function streamUploadScript(remotePath: string, mode?: number): string {
  const umask = mode === undefined ? "" : `umask ${(~mode & 0o777).toString(8).padStart(3, "0")} && `;
  return `${umask}exec cat > ${quote(remotePath)}`;
}

/**
 * Print `remotePath`'s size in bytes as one line on stderr, then its bytes on stdout; exit 2 with a line naming the
 * problem when it is missing or not a regular file. `wc -c` gets its own open file: on a shared one it may seek to the
 * end (GNU wc does for large regular files), leaving nothing for `cat`.
 */
export function streamDownloadScript(remotePath: string): string {
  const path = quote(remotePath);
  return (
    `if [ ! -f ${path} ]; then if [ -e ${path} ]; then echo "not a regular file: "${path} >&2; else echo "no such file: "${path} >&2; fi; exit 2; fi; ` +
    `exec 0<${path} || exit 2; printf '%s\\n' "$(wc -c < ${path} | tr -d ' ')" >&2 && exec cat`
  );
}
