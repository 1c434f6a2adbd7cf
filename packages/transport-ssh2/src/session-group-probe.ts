/**
 * Learning, once per connection, whether a server's `signal` requests reach a command's whole tree.
 *
 * OpenSSH makes each session's command a process-group leader and signals that group; dropbear does neither, so a
 * cancelled `sleep 300 & wait` would leave the `sleep` running. Commands then run in a group of their own (core's
 * `inOwnProcessGroup`). That wrapper starts perl or a second shell on every command (measured on OpenSSH over
 * loopback: ~11 ms for `true` plain, ~28 ms wrapped), so it is not paid where the server groups by itself: one
 * exec at connect (~11 ms) asks the server which kind it is.
 */
import { AbortError, TimeoutError, runProcess, type Connection } from "@tunnel-sh/core";
import { SESSION_GROUP_PROBE, deadlineSignal, parseSessionGroupProbe, raceAbort } from "@tunnel-sh/core/internal";

/**
 * Whether the server makes a session's command a group leader: `true`/`false` as measured, `undefined` when the
 * probe could not tell (the exec failed, printed something else or took longer than `timeoutMs`; the caller keeps
 * its guess). Rejects only with `AbortError` when `signal` aborts.
 */
export async function probeSessionGroup(
  connection: Connection,
  options: { timeoutMs: number; signal?: AbortSignal | undefined },
): Promise<boolean | undefined> {
  const { signal, timeoutMs } = options;
  const target = connection.target;
  // Bounded here, not only by runProcess: a server that never answers the channel open must not hold the connect.
  const stop = deadlineSignal({
    signal,
    timeoutMs,
    abortReason: () => new AbortError("the connect was aborted", { phase: "connect", target }),
    timeoutReason: () => new TimeoutError(`the session-group probe took longer than ${timeoutMs} ms`, { timeoutMs, phase: "connect", target }),
  });
  try {
    const probe = runProcess(connection, { command: SESSION_GROUP_PROBE, signal: stop.signal }).then(
      (result) => (result.exitCode === 0 ? parseSessionGroupProbe(result.stdout) : undefined),
      () => undefined,
    );
    const answer = await raceAbort(probe, stop.signal).catch(() => undefined);
    if (signal?.aborted) throw new AbortError("the connect was aborted", { phase: "connect", target });
    return answer;
  } finally {
    stop.dispose();
  }
}
