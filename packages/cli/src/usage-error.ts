/** A problem with what the user typed or pointed at (options, host list, inventory): nothing was run. Exit status 2. */
export class UsageError extends Error {
  override readonly name = "UsageError";
}

/** The user interrupted (Ctrl-C) before anything ran, e.g. at the password prompt. Exit status 130. */
export class InterruptedError extends Error {
  override readonly name = "InterruptedError";
  constructor() {
    super("interrupted");
  }
}
