import type { PoolKeyStats, PoolStats } from "@tunnel-sh/core";
import type { KeyState } from "./pooled-connection.js";
import type { WaitRecorder } from "./wait-recorder.js";

/** `open` lends; `closing` lends no more and waits for leases; `closed` and `destroyed` are final. */
export type PoolState = "open" | "closing" | "closed" | "destroyed";

/**
 * Why the pool let go of a connection (the keys of `stats().evicted`):
 * - `idle`: unused for `idleTimeoutMs`; `lifetime`: older than `maxLifetimeMs`;
 * - `lost`: it closed with an error; `closed`: it closed without one (or was found closed);
 * - `ping-failed`: the health check before lending failed or timed out;
 * - `destroyed`: a lease was destroyed; `refused`: the server refused the only channel twice in a row;
 * - `make-room`: an idle connection closed so that a waiter for another key could connect under `maxConnections`;
 * - `pool-closed` / `pool-destroyed`: the pool shut down.
 */
export type EvictionReason = "idle" | "lifetime" | "lost" | "closed" | "ping-failed" | "destroyed" | "refused" | "make-room" | "pool-closed" | "pool-destroyed";

/** One connection as `stats()` shows it. */
export interface PooledConnectionStats {
  /** A number unique within the pool, in order of creation. */
  readonly id: number;
  /** `open` lends channels; `draining` lends no more and closes when its last channel is returned. */
  readonly state: "open" | "draining";
  readonly busyChannels: number;
  /** The channel budget: the lower of the config's and the connection's, lowered by refusals. */
  readonly channels: number;
  /** Leases handed out on this connection so far. */
  readonly uses: number;
  readonly ageMs: number;
}

export interface ConnectionPoolKeyStats extends PoolKeyStats {
  /** Connects in flight. */
  readonly connecting: number;
  /** Every open or draining connection, oldest first. */
  readonly connectionDetails: readonly PooledConnectionStats[];
}

export interface ConnectionPoolStats extends PoolStats {
  readonly state: PoolState;
  readonly connecting: number;
  readonly keys: Readonly<Record<string, ConnectionPoolKeyStats>>;
}

/** What `ConnectionPool.stats()` returns: totals over every key, and each key's own figures. */
export function collectPoolStats(state: PoolState, keyStates: Iterable<KeyState>, waiting: number, waits: WaitRecorder): ConnectionPoolStats {
  const now = Date.now();
  const keys: Record<string, ConnectionPoolKeyStats> = {};
  const evicted: Record<string, number> = {};
  let connections = 0;
  let busyChannels = 0;
  let idleConnections = 0;
  let created = 0;
  let connecting = 0;
  for (const keyState of keyStates) {
    const details: PooledConnectionStats[] = [];
    let busy = 0;
    let idle = 0;
    for (const pooled of keyState.connections) {
      busy += pooled.busy;
      if (pooled.busy === 0 && pooled.state === "open") idle += 1;
      details.push({
        id: pooled.id,
        state: pooled.state,
        busyChannels: pooled.busy,
        channels: pooled.budget.limit,
        uses: pooled.uses,
        ageMs: now - pooled.createdAt,
      });
    }
    keys[keyState.key] = {
      connections: keyState.connections.size,
      busyChannels: busy,
      idleConnections: idle,
      waiting: keyState.waiting,
      created: keyState.created,
      evicted: { ...keyState.evicted },
      connecting: keyState.pending.size,
      connectionDetails: details,
    };
    connections += keyState.connections.size;
    busyChannels += busy;
    idleConnections += idle;
    created += keyState.created;
    connecting += keyState.pending.size;
    for (const [reason, count] of Object.entries(keyState.evicted)) evicted[reason] = (evicted[reason] ?? 0) + count;
  }
  return {
    state,
    connections,
    busyChannels,
    idleConnections,
    waiting,
    created,
    evicted,
    connecting,
    keys,
    acquireWaitMs: waits.snapshot(),
  };
}
