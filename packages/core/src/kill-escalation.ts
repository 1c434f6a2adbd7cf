/**
 * Stopping a process, in one place: TERM first, KILL for a process still there after the grace period, then give up
 * on it. Transports run this one policy for an aborted or timed-out command (ssh2 through `signal` requests, openssh
 * through a kill in another session of the master); `DEFAULT_KILL_GRACE_MS` is the grace both use unless configured.
 */

/** Milliseconds between TERM and KILL (and between KILL and giving up) unless a transport is configured otherwise. */
export const DEFAULT_KILL_GRACE_MS = 2_000;

/** The two signals escalation sends, in this order. */
export type EscalationSignal = "TERM" | "KILL";

/** How `escalateKill` ended. */
export type EscalationOutcome = "ended" | "abandoned";

export interface KillEscalation {
  /**
   * Send `signal` to the process. It MAY be asynchronous (a kill run over another session); escalation waits for it
   * before the grace period starts. A rejection counts as sent: the next step still follows.
   */
  send(signal: EscalationSignal): void | Promise<void>;
  /** Settles (either way) once the process has ended. */
  readonly ended: Promise<unknown>;
  /** Milliseconds to wait after each signal. */
  readonly graceMs: number;
  /** Called once when the process outlived KILL and its grace: drop it (close its channel, kill the local client). */
  abandon?(): void;
}

/**
 * TERM, wait up to `graceMs` for the process to end, KILL, wait again, then `abandon()`. Resolves with `"ended"`
 * as soon as `ended` settles (no later step runs), or with `"abandoned"`. The timers are unreferenced: escalation
 * never keeps Node alive.
 * @example
 * await escalateKill({ send: (name) => channel.signal(name), ended: exit, graceMs: DEFAULT_KILL_GRACE_MS, abandon: () => channel.close() });
 */
export async function escalateKill(escalation: KillEscalation): Promise<EscalationOutcome> {
  let ended = false;
  const done = escalation.ended.then(
    () => (ended = true),
    () => (ended = true),
  );
  for (const signal of ["TERM", "KILL"] as const) {
    if (ended) return "ended";
    try {
      await escalation.send(signal);
    } catch {
      // A signal that could not be sent leaves the process as it was: the next step decides.
    }
    if (await endsWithin(done, escalation.graceMs)) return "ended";
  }
  escalation.abandon?.();
  return "abandoned";
}

/** Whether `done` settles within `ms`. */
function endsWithin(done: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const elapsed = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
    timer.unref?.();
  });
  return Promise.race([done.then(() => true as const), elapsed]).finally(() => clearTimeout(timer));
}
