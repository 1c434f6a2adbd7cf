/**
 * Remote snippets for a script's private folder: `${TMPDIR:-/tmp}/<name>`, mode 0700, holding the script's body as
 * `script`. POSIX sh; `mkdir` of a fresh random name fails rather than follow anything already there.
 */

function folderWord(name: string): string {
  if (!/^[A-Za-z0-9._-]+$/.test(name) || name.startsWith(".")) throw new TypeError(`not a folder name: ${JSON.stringify(name)}`);
  return `"\${TMPDIR:-/tmp}/${name}"`;
}

/** Creates the folder, writes stdin into `script` inside it and prints the folder's path (one line). */
export function writeScriptFolderScript(name: string): string {
  return `umask 077 && d=${folderWord(name)} && mkdir -m 700 -- "$d" && cat > "$d/script" && printf '%s\\n' "$d"`;
}

/** Removes the folder and everything in it. */
export function removeScriptFolderScript(name: string): string {
  return `rm -rf -- ${folderWord(name)}`;
}
