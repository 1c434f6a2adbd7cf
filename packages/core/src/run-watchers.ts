/**
 * What `runProcess` watches a process's output for: the start token (proof that the login shell ran the prepared
 * command) and the sudo exchange (answer the prompt once, let the command's stdin through at the ready token). Each
 * turns an exchange that never completed into the typed error that says why.
 */
import { SudoError, UnsupportedHostError } from "./errors.js";
import type { TunnelError } from "./errors.js";
import type { RunResult, SudoExchange } from "./run.js";
import { formatTarget } from "./target.js";
import { TokenFilter } from "./token-filter.js";
import type { Connection, RemoteProcess } from "./transport.js";

/** Watches for the start token on both streams (a pty merges stderr into stdout) and strips it. */
export class StartWatcher {
  seen = false;
  readonly #filters: TokenFilter[] = [];

  constructor(readonly token: string) {}

  filter(): TokenFilter {
    const filter = new TokenFilter([this.token], () => {
      this.seen = true;
      for (const other of this.#filters) other.finish();
      return "done";
    });
    this.#filters.push(filter);
    return filter;
  }

  /** The error for a process that ended without the token: the login shell did not run the command. */
  failure(result: RunResult, connection: Connection): UnsupportedHostError {
    const text = `${result.stderr}\n${result.stdout}`;
    const detail = text
      .split("\n")
      .map((line) => line.trim())
      .find((line) => line !== "");
    const how = result.signal ? `was killed by ${result.signal}` : `exited with code ${result.exitCode}`;
    return new UnsupportedHostError(`the login shell on ${formatTarget(connection.target)} did not run the command (it ${how})${detail ? `: ${detail}` : ""}`, {
      reason: "shell",
      target: connection.target,
      ...(detail !== undefined ? { detail } : {}),
    });
  }
}

/**
 * Watches a sudo-wrapped process: answers the prompt once, ends the prompt phase at the ready token,
 * and turns a failed exchange into a `SudoError`.
 */
export class SudoWatcher {
  done = false;
  #prompts = 0;
  readonly #filters: TokenFilter[] = [];
  readonly #exchange: SudoExchange;
  readonly #process: RemoteProcess;
  readonly #sendStdin: () => void;
  readonly #stop: (error: TunnelError) => void;
  readonly #stopped: () => boolean;
  readonly #connection: Connection;

  constructor(
    exchange: SudoExchange,
    process: RemoteProcess,
    sendStdin: () => void,
    stop: (error: TunnelError) => void,
    stopped: () => boolean,
    connection: Connection,
  ) {
    this.#exchange = exchange;
    this.#process = process;
    this.#sendStdin = sendStdin;
    this.#stop = stop;
    this.#stopped = stopped;
    this.#connection = connection;
  }

  /** A filter for one output stream; the prompt and ready tokens may appear on either (a pty merges them). */
  filter(): TokenFilter {
    const filter = new TokenFilter([this.#exchange.prompt, this.#exchange.ready], (token) => {
      if (this.done) return "done";
      // A stopped run (abort, timeout) neither answers a prompt nor lets the command through, whatever arrives later.
      if (this.#stopped()) return "continue";
      if (token === this.#exchange.ready) {
        this.done = true;
        for (const other of this.#filters) other.finish();
        if (this.#exchange.gate !== undefined) {
          this.#exchange.onRelease?.();
          this.#process.stdin.write(`${this.#exchange.gate}\n`);
        }
        this.#sendStdin();
        return "done";
      }
      this.#prompts += 1;
      if (this.#prompts === 1 && this.#exchange.password !== undefined) {
        this.#process.stdin.write(`${this.#exchange.password}\n`);
        this.#exchange.onPrompt?.();
      } else {
        const reason = this.#exchange.password === undefined ? "password-required" : "wrong-password";
        this.#stop(
          new SudoError(reason === "wrong-password" ? "sudo rejected the password" : "sudo asked for a password but none was given", {
            reason,
            target: this.#connection.target,
          }),
        );
      }
      return "continue";
    });
    this.#filters.push(filter);
    return filter;
  }

  /** The error for a process that ended before sudo let the command start. */
  failure(result: RunResult): SudoError {
    const text = `${result.stderr}\n${result.stdout}`;
    const target = this.#connection.target;
    if (/a password is required/.test(text)) {
      return new SudoError("sudo needs a password for this user (sudo -n would have prompted)", {
        reason: "password-required",
        target,
      });
    }
    if (/incorrect password|Sorry, try again|no password was provided/.test(text)) {
      return new SudoError("sudo rejected the password", { reason: "wrong-password", target });
    }
    if (/not in the sudoers file|is not allowed to|may not run sudo/.test(text)) {
      return new SudoError("the user is not allowed to run this command with sudo", { reason: "not-allowed", target });
    }
    const firstLine = result.stderr.trim().split("\n")[0] ?? "";
    return new SudoError(`sudo failed before the command started${firstLine ? `: ${firstLine}` : ""}`, {
      reason: "other",
      target,
    });
  }
}
