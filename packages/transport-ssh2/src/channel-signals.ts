/** Signals to a process on an ssh2 session channel: SSH `signal` requests (RFC 4254 §6.10). */
import type { ClientChannel } from "ssh2";

/** Signals the SSH protocol can carry (RFC 4254 §6.10), without the `SIG` prefix. */
export const SSH_SIGNALS: ReadonlySet<string> = new Set(["ABRT", "ALRM", "FPE", "HUP", "ILL", "INT", "KILL", "PIPE", "QUIT", "SEGV", "TERM", "USR1", "USR2"]);

/** `TERM`, `sigterm`, `SIGTERM` → `SIGTERM`. */
export function normalizeSignalName(signal: string): string {
  const upper = signal.toUpperCase();
  return upper.startsWith("SIG") ? upper : `SIG${upper}`;
}

/** ssh2 keeps the channel's sending state here; its typings leave it `unknown`. */
interface ChannelState {
  readonly outgoing: { readonly state: string; readonly id: number };
}

/** The channel's sending side: `"open"`, `"eof"` once stdin's EOF went out, `"closed"`. */
export function outgoing(channel: ClientChannel): ChannelState["outgoing"] {
  return (channel as unknown as ChannelState).outgoing;
}

/** Send `name` (no `SIG` prefix) to the channel's process, also after stdin's EOF. Throws when the connection is gone. */
export function sendChannelSignal(channel: ClientChannel, name: string): void {
  const state = outgoing(channel).state;
  if (state === "open") {
    channel.signal(name);
  } else if (state === "eof") {
    // ssh2's `signal()` refuses once EOF was sent on stdin (`outgoing.state === "eof"`), yet the
    // channel is still open and sshd still honours the request; send it through the protocol directly.
    const internals = channel as unknown as { _client?: { _protocol?: { signal?: (id: number, name: string) => void } } };
    internals._client?._protocol?.signal?.(outgoing(channel).id, name);
  }
}
