import type { Connection, Target } from "@tunnel-sh/core";
import type { ChannelBudget } from "@tunnel-sh/core/internal";
import type { PendingConnect } from "./acquire-queue.js";

export type Timer = ReturnType<typeof setTimeout>;

/** Everything the pool holds for one connection key. */
export interface KeyState {
  readonly key: string;
  readonly target: Target;
  readonly connections: Set<PooledConnection>;
  readonly pending: Set<PendingConnect>;
  closing: number;
  waiting: number;
  created: number;
  readonly evicted: Record<string, number>;
}

/** One connection the pool made, with its channel budget, its counters and its timers. */
export interface PooledConnection {
  readonly id: number;
  readonly keyState: KeyState;
  readonly connection: Connection;
  readonly createdAt: number;
  /** Still counted in its key's `connections` (false once its close started). */
  tracked: boolean;
  state: "open" | "draining";
  /** Starts at the lower of the config's `maxChannelsPerConnection` and the connection's `maxChannels`. */
  readonly budget: ChannelBudget;
  busy: number;
  uses: number;
  lastActivityAt: number;
  /** Set only during the dispatch right after a connect or a successful ping: lend without pinging again. */
  verified: boolean;
  pinging: boolean;
  idleTimer: Timer | undefined;
  lifetimeTimer: Timer | undefined;
  stopListening: () => void;
}

/** Is `pooled` stale: unused for `pingAfterIdleMs` and not verified in this dispatch? Then it is pinged before it is lent. */
export function needsPing(pooled: PooledConnection, now: number, pingAfterIdleMs: number): boolean {
  return !pooled.verified && Number.isFinite(pingAfterIdleMs) && now - pooled.lastActivityAt >= pingAfterIdleMs;
}

/** Connections of the key that still lend (not draining). */
export function openConnections(keyState: KeyState): number {
  let count = 0;
  for (const pooled of keyState.connections) if (pooled.state === "open") count += 1;
  return count;
}

/** The least-loaded open connection with a free channel that must be pinged before it is lent. */
export function staleCandidate(keyState: KeyState, pingAfterIdleMs: number): PooledConnection | undefined {
  const now = Date.now();
  let best: PooledConnection | undefined;
  for (const pooled of keyState.connections) {
    if (pooled.state !== "open" || pooled.pinging || pooled.busy >= pooled.budget.limit) continue;
    if (!needsPing(pooled, now, pingAfterIdleMs)) continue;
    if (!best || pooled.busy < best.busy) best = pooled;
  }
  return best;
}

/** Free channels on the key's connections being pinged: waiters that expect them do not start connects. */
export function freeChannelsBeingPinged(keyState: KeyState): number {
  let free = 0;
  for (const pooled of keyState.connections) if (pooled.pinging && pooled.state === "open") free += Math.max(0, pooled.budget.limit - pooled.busy);
  return free;
}

/** The least recently used idle connection of any key: the one to close to free a slot under `maxConnections`. */
export function leastRecentlyUsedIdle(keyStates: Iterable<KeyState>): PooledConnection | undefined {
  let victim: PooledConnection | undefined;
  for (const keyState of keyStates) {
    for (const pooled of keyState.connections) {
      if (pooled.state !== "open" || pooled.busy > 0 || pooled.pinging) continue;
      if (!victim || pooled.lastActivityAt < victim.lastActivityAt) victim = pooled;
    }
  }
  return victim;
}

export function clearTimer(timer: Timer | undefined): void {
  if (timer !== undefined) clearTimeout(timer);
}

/** Health and expiry timers must not keep Node alive on their own; open connections and waiters do. */
export function unref(timer: Timer): Timer {
  (timer as { unref?: () => void }).unref?.();
  return timer;
}
