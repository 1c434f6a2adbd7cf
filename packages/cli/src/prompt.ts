/**
 * A hidden password prompt on the terminal: nothing is echoed, Ctrl-C cancels.
 */
import { InterruptedError, UsageError } from "./usage-error.js";
import type { OutputStream } from "./output.js";

/** A terminal input: `process.stdin` fits. */
export interface TerminalInput {
  readonly isTTY?: boolean | undefined;
  setRawMode?(mode: boolean): unknown;
  on(event: "data", listener: (chunk: Buffer | string) => void): unknown;
  removeListener(event: "data", listener: (chunk: Buffer | string) => void): unknown;
  resume(): unknown;
  pause(): unknown;
}

/**
 * Ask for a secret on the terminal without echoing it. Enter ends it, Backspace deletes, Ctrl-C rejects with
 * `InterruptedError`, Ctrl-D ends it. Rejects with `UsageError` when `input` is not a terminal.
 */
export function promptHidden(prompt: string, input: TerminalInput | undefined, output: OutputStream): Promise<string> {
  if (!input || input.isTTY !== true || typeof input.setRawMode !== "function") {
    return Promise.reject(new UsageError("--ask-sudo-pass needs a terminal on stdin; use --sudo-pass-env VAR instead"));
  }
  const terminal = input;
  return new Promise<string>((resolve, reject) => {
    let value = "";
    const finish = (outcome: () => void) => {
      terminal.removeListener("data", onData);
      terminal.setRawMode?.(false);
      terminal.pause();
      output.write("\n");
      outcome();
    };
    const onData = (chunk: Buffer | string) => {
      for (const character of typeof chunk === "string" ? chunk : chunk.toString("utf8")) {
        if (character === "\r" || character === "\n" || character === "\u0004") {
          const secret = value;
          finish(() => resolve(secret));
          return;
        }
        if (character === "\u0003") {
          finish(() => reject(new InterruptedError()));
          return;
        }
        if (character === "\u007f" || character === "\b") {
          value = Array.from(value).slice(0, -1).join("");
          continue;
        }
        value += character;
      }
    };
    output.write(prompt);
    terminal.setRawMode?.(true);
    terminal.on("data", onData);
    terminal.resume();
  });
}
