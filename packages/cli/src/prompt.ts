/**
 * Prompts on the terminal: a hidden password prompt (nothing is echoed, Ctrl-C cancels), and the answers to
 * keyboard-interactive questions a server asks at login (second factors).
 */
import type { KeyboardInteractiveHandler } from "@tunnel-sh/core";
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
  if (!isTerminal(input)) {
    return Promise.reject(new UsageError("--ask-sudo-pass needs a terminal on stdin; use --sudo-pass-env VAR instead"));
  }
  return promptTerminal(prompt, input, output, { echo: false });
}

function isTerminal(input: TerminalInput | undefined): input is TerminalInput {
  return input !== undefined && input.isTTY === true && typeof input.setRawMode === "function";
}

/** One answer from the terminal; shown as typed only with `echo`. An aborted `signal` rejects with its reason. */
function promptTerminal(prompt: string, terminal: TerminalInput, output: OutputStream, options: { echo: boolean; signal?: AbortSignal }): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    let value = "";
    const onAbort = () => finish(() => reject(options.signal?.reason ?? new InterruptedError()));
    const finish = (outcome: () => void) => {
      options.signal?.removeEventListener("abort", onAbort);
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
          if (options.echo && value !== "") output.write("\b \b");
          value = Array.from(value).slice(0, -1).join("");
          continue;
        }
        value += character;
        if (options.echo) output.write(character);
      }
    };
    if (options.signal?.aborted) {
      reject(options.signal.reason);
      return;
    }
    options.signal?.addEventListener("abort", onAbort, { once: true });
    output.write(prompt);
    terminal.setRawMode?.(true);
    terminal.on("data", onData);
    terminal.resume();
  });
}

/**
 * Answers keyboard-interactive prompts (a second factor after the key) on the terminal, one host at a time:
 * `[user@host] Verification code: `. Answers are never echoed unless the server allows it, and go only to the
 * transport. Without a terminal the login fails (the transport reports an AuthenticationError).
 */
export function terminalKeyboardInteractive(input: TerminalInput | undefined, output: OutputStream): KeyboardInteractiveHandler {
  let queue: Promise<unknown> = Promise.resolve();
  return (request) => {
    if (!isTerminal(input)) return Promise.reject(new UsageError("the server asks a keyboard-interactive question; answering needs a terminal on stdin"));
    const who = `${request.target.user === undefined ? "" : `${request.target.user}@`}${request.target.host}`;
    const ask = async (): Promise<string[]> => {
      if (request.instructions !== "") output.write(`[${who}] ${request.instructions}\n`);
      const answers: string[] = [];
      for (const { prompt, echo } of request.prompts) {
        answers.push(await promptTerminal(`[${who}] ${prompt}`, input, output, { echo, signal: request.signal }));
      }
      return answers;
    };
    const answered = queue.then(ask, ask);
    queue = answered.catch(() => undefined);
    return answered;
  };
}
