export { BUDGET_RECOVERY_RELEASES, ConnectionPool } from "./connection-pool.js";
export type {
  ConnectionPoolKeyStats,
  ConnectionPoolStats,
  EvictionReason,
  PoolState,
  PooledConnectionStats,
} from "./pool-stats.js";
export { DefaultPoolConfig, MAX_TIMER_MS, resolvePoolConfig } from "./config.js";
export type { PoolConfig } from "./config.js";
export { generateConnectionKey } from "./connection-key.js";
