/**
 * Remote snippets for a session's terminal (pty). POSIX `stty`, alike in GNU coreutils, busybox and BSD.
 */

/** The window size to set; either may be absent (kept as it is). */
export interface TerminalSize {
  readonly rows?: number;
  readonly cols?: number;
}

function dimension(value: number | undefined, name: string): string {
  if (value === undefined) return "";
  if (!Number.isFinite(value) || value < 1) throw new TypeError(`${name} must be a positive number, got ${value}`);
  return ` ${name} ${Math.trunc(value)}`;
}

/**
 * Resets the terminal's modes to the pty driver's defaults (`stty sane`) and sets the window size; silent where
 * there is no terminal (join it with `;`, so what follows runs either way). For a client that hands the server the modes of a local terminal there is
 * none of (everything off, even `onlcr`), e.g. OpenSSH's `ssh -tt` through a ControlMaster.
 * @example terminalResetScript({ rows: 40, cols: 120 }) // => "stty sane rows 40 cols 120 2>/dev/null"
 */
export function terminalResetScript(size: TerminalSize = {}): string {
  return `stty sane${dimension(size.rows, "rows")}${dimension(size.cols, "cols")} 2>/dev/null`;
}
