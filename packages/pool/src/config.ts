/**
 * Configuration of a `ConnectionPool`. Times are milliseconds; counts are whole numbers.
 *
 * Build one from the defaults and override what you need:
 * @example
 * const config = { ...DefaultPoolConfig(), maxConnectionsPerKey: 2, acquireTimeoutMs: 10_000 };
 * const pool = new ConnectionPool(transport, config);
 */
import { ConfigError, rejectUnknownOptions } from "@tunnel-sh/core";

/** Node's timers fire at once for delays above this, so every finite time must stay below it. */
export const MAX_TIMER_MS = 2_147_483_647;

export interface PoolConfig {
  /**
   * Connections open at once to one key (`user@host:port`), counting connections being opened and being closed.
   * Default 4.
   */
  readonly maxConnectionsPerKey: number;
  /** Connections open at once across all keys, counted the same way. Default 64. */
  readonly maxConnections: number;
  /**
   * Channels (remote processes, transfers) leased at once on one connection. The pool uses the lower of this
   * and the connection's own `maxChannels`, and lowers it further when the server refuses a channel.
   * Keep it at or below the servers' `MaxSessions` (sshd's default is 10). Default 10.
   */
  readonly maxChannelsPerConnection: number;
  /**
   * Connects in flight at once to one key. sshd drops unauthenticated connections past `MaxStartups`
   * (default `10:30:100`: from 10 pending connects on, 30% are dropped), counted over all its clients.
   * Default 3.
   */
  readonly maxConnectingPerKey: number;
  /** How long `acquire()` may wait for a lease before it rejects with `PoolTimeoutError`. `Infinity` waits forever. Default 30 000. */
  readonly acquireTimeoutMs: number;
  /** Acquires allowed to wait at once; one more rejects at once with `PoolTimeoutError`. `Infinity` for no limit. Default 10 000. */
  readonly maxWaiting: number;
  /** A connection with no leased channel for this long is closed. `Infinity` keeps idle connections. Default 60 000. */
  readonly idleTimeoutMs: number;
  /**
   * A connection older than this is retired: closed at once when idle, otherwise no longer lent and closed when
   * its last channel is returned. `Infinity` for no limit. Default 1 800 000 (30 minutes).
   */
  readonly maxLifetimeMs: number;
  /**
   * A connection not used (no lease taken or returned) for this long is pinged before it is lent again;
   * if the ping fails it is evicted and the acquire goes on with another connection. `0` pings before
   * every lend, `Infinity` never pings. Default 30 000.
   */
  readonly pingAfterIdleMs: number;
  /** How long a ping may take before the connection is considered dead. Default 5 000. */
  readonly pingTimeoutMs: number;
  /**
   * Connections kept open per key once the key has been used: idle expiry stops at this number, and a
   * connection evicted for its lifetime, a failed ping or a loss is replaced in the background. Default 0.
   */
  readonly minIdlePerKey: number;
}

/** The defaults, sized for sshd's defaults (`MaxSessions 10`, `MaxStartups 10:30:100`). A fresh object each call. */
export function DefaultPoolConfig(): PoolConfig {
  return {
    maxConnectionsPerKey: 4,
    maxConnections: 64,
    maxChannelsPerConnection: 10,
    maxConnectingPerKey: 3,
    acquireTimeoutMs: 30_000,
    maxWaiting: 10_000,
    idleTimeoutMs: 60_000,
    maxLifetimeMs: 1_800_000,
    pingAfterIdleMs: 30_000,
    pingTimeoutMs: 5_000,
    minIdlePerKey: 0,
  };
}

type Rule =
  { readonly kind: "count"; readonly min: number; readonly infinite?: boolean } | { readonly kind: "time"; readonly min: number; readonly infinite: boolean };

const RULES: Readonly<Record<keyof PoolConfig, Rule>> = {
  maxConnectionsPerKey: { kind: "count", min: 1 },
  maxConnections: { kind: "count", min: 1 },
  maxChannelsPerConnection: { kind: "count", min: 1 },
  maxConnectingPerKey: { kind: "count", min: 1 },
  acquireTimeoutMs: { kind: "time", min: 0, infinite: true },
  maxWaiting: { kind: "count", min: 0, infinite: true },
  idleTimeoutMs: { kind: "time", min: 1, infinite: true },
  maxLifetimeMs: { kind: "time", min: 1, infinite: true },
  pingAfterIdleMs: { kind: "time", min: 0, infinite: true },
  pingTimeoutMs: { kind: "time", min: 1, infinite: false },
  minIdlePerKey: { kind: "count", min: 0 },
};

/**
 * Fill in defaults for missing fields and check every field, before any I/O.
 * Throws `ConfigError` whose `field` names the first field at fault (unknown fields included).
 */
export function resolvePoolConfig(config: Partial<PoolConfig> = {}): PoolConfig {
  if (typeof config !== "object" || config === null) throw new ConfigError("config", "must be an object");
  rejectUnknownOptions(config, Object.keys(RULES), "ConnectionPool");
  const resolved: Record<string, unknown> = { ...DefaultPoolConfig() };
  for (const [field, value] of Object.entries(config)) if (value !== undefined) resolved[field] = value;
  for (const [field, rule] of Object.entries(RULES)) checkField(field, resolved[field], rule);
  const result = resolved as unknown as PoolConfig;
  // maxConnectingPerKey above maxConnectionsPerKey, or maxConnectionsPerKey above maxConnections, is allowed:
  // the tighter limit wins, so lowering one limit never forces a change to another.
  if (result.minIdlePerKey > result.maxConnectionsPerKey) {
    throw new ConfigError("minIdlePerKey", `must not exceed maxConnectionsPerKey (${result.maxConnectionsPerKey})`);
  }
  return Object.freeze(result);
}

function checkField(field: string, value: unknown, rule: Rule): void {
  if (typeof value !== "number" || Number.isNaN(value)) throw new ConfigError(field, `must be a number, got ${typeof value}`);
  if (value === Infinity) {
    if (rule.infinite) return;
    throw new ConfigError(field, "must be finite");
  }
  if (!Number.isInteger(value)) throw new ConfigError(field, `must be a whole number, got ${value}`);
  if (value < rule.min) throw new ConfigError(field, `must be at least ${rule.min}, got ${value}`);
  if (rule.kind === "time" && value > MAX_TIMER_MS) {
    throw new ConfigError(field, `must be at most ${MAX_TIMER_MS} ms${rule.infinite ? " (use Infinity for no limit)" : ""}, got ${value}`);
  }
}
