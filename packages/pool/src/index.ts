export { ConnectionPool } from "./connection-pool.js";
// The budget policy is core's (channel-budget.ts); the pool keeps one budget per connection and re-exports its constant.
export { BUDGET_RECOVERY_RELEASES } from "@tunnel-sh/core/internal";
export type { ConnectionPoolKeyStats, ConnectionPoolStats, EvictionReason, PoolState, PooledConnectionStats } from "./pool-stats.js";
export { DefaultPoolConfig, MAX_TIMER_MS, resolvePoolConfig } from "./config.js";
export type { PoolConfig } from "./config.js";
export { generateConnectionKey } from "./connection-key.js";
