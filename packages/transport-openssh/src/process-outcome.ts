/**
 * How one remote process ended, from how its mux client exited and what the wrapper on the host reported: an exit
 * status, or the typed error that explains why there is none.
 */
import { AbortError, UnsupportedHostError, ValidationError, formatTarget, type ExitStatus, type TunnelError } from "@tunnel-sh/core";
import { normalizeSshError } from "./normalize-error.js";
import type { ProcessHost } from "./process-host.js";

/** What is known once the mux client has exited. */
export interface EndedClient {
  /** ssh's exit code (`null` when it died by a signal). */
  readonly code: number | null;
  /** The spawn itself failed (no ssh binary, E2BIG). */
  readonly spawnError: Error | undefined;
  /** The request's signal aborted. */
  readonly aborted: boolean;
  /** The request asked for a pty. */
  readonly pty: boolean;
  /** The server refused the pty and ran the command without one. */
  readonly ptyRefused: boolean;
  /** The waiter's pid report arrived: the command started. */
  readonly started: boolean;
  /** The waiter's report of how the command ended. */
  readonly status: ExitStatus | undefined;
  /** What ssh itself printed before the command started. */
  readonly sshStderr: string;
  /** The last signal sent to the group (without `SIG`). */
  readonly lastSignal: string | undefined;
}

export type Outcome = { readonly status: ExitStatus } | { readonly error: TunnelError };

export async function processOutcome(ended: EndedClient, host: ProcessHost): Promise<Outcome> {
  const target = host.target;
  if (ended.spawnError) {
    if ((ended.spawnError as NodeJS.ErrnoException).code === "E2BIG") {
      return { error: new ValidationError("command", "is too long for the argument list of a local ssh (E2BIG)", { target }) };
    }
    return { error: normalizeSshError({ phase: "channel", stderr: `ssh: ${ended.spawnError.message}`, exitCode: null, target }) };
  }
  if (ended.aborted) return { error: new AbortError("the command was aborted; the remote process was stopped", { target }) };
  if (ended.ptyRefused) {
    // The command ran without the terminal it asked for; the next attempt would get none either.
    return {
      error: new UnsupportedHostError("the server refused to allocate a pseudo-terminal (pty), e.g. PermitTTY no; the command ran without one", {
        reason: "pty",
        detail: "PTY allocation request failed",
        target,
      }),
    };
  }
  if (ended.status) return { status: ended.status };
  if (!ended.started) {
    const refusal = hostRefusal(ended, host);
    if (refusal) return { error: refusal };
    // Never started: ssh's own message says why — unless the master died under the request, which a mux client
    // talking to a dying master cannot always tell.
    let error = normalizeSshError({ phase: "channel", stderr: ended.sshStderr, exitCode: ended.code, target });
    if (error.code !== "CONNECTION_LOST" && !(error as { refused?: boolean }).refused) {
      error = (await host.masterLost()) ?? error;
    }
    if (error.code === "CONNECTION_LOST") host.reportLost(error);
    return { error };
  }
  // Started but the wrapper never reported: either the link or master is gone, or the whole process group got
  // SIGKILL (the one signal the wrapper cannot outlive).
  const lost = await host.masterLost();
  if (lost) return { error: lost };
  return { status: { exitCode: null, signal: `SIG${ended.lastSignal ?? "KILL"}` } };
}

/**
 * The session ran but the wrapper never reported: the host refused the pty, or the login shell did not run the
 * command (a `nologin` or restricted shell). ssh exits with the remote status then, not 255. Both would fail the
 * same way again, so they are never retried.
 */
function hostRefusal(ended: EndedClient, host: ProcessHost): TunnelError | undefined {
  const text = ended.sshStderr;
  const target = host.target;
  if (ended.pty && /PTY allocation request failed/.test(text)) {
    return new UnsupportedHostError(`the server refused a pseudo-terminal on ${formatTarget(target)}`, {
      reason: "pty",
      detail: "PTY allocation request failed",
      target,
    });
  }
  const code = ended.code;
  if (code === null || code === 255) return undefined;
  const detail = text
    .split("\n")
    .map((line) => line.trim())
    .find((line) => line !== "");
  return new UnsupportedHostError(
    `the login shell on ${formatTarget(target)} did not run the command (ssh exited with ${code})${detail ? `: ${detail}` : ""}`,
    { reason: "shell", target, ...(detail !== undefined ? { detail } : {}) },
  );
}
