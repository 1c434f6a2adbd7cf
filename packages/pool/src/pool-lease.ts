import type { Connection, Lease } from "@tunnel-sh/core";
import type { PooledConnection } from "./pooled-connection.js";

/** How a lease came back: clean, suspect (evict the connection), or refused by the server before its channel opened. */
export type LeaseOutcome = { readonly kind: "release" } | { readonly kind: "destroy"; readonly reason: unknown } | { readonly kind: "refused" };

/** One channel of a pooled connection, lent to one caller; the first `release`, `destroy` or `refused` counts. */
export class PoolLease implements Lease {
  private returned = false;

  constructor(
    private readonly pooled: PooledConnection,
    private readonly giveBack: (pooled: PooledConnection, outcome: LeaseOutcome) => void,
  ) {}

  get connection(): Connection {
    return this.pooled.connection;
  }

  get key(): string {
    return this.pooled.keyState.key;
  }

  release(): void {
    this.finish({ kind: "release" });
  }

  destroy(reason?: unknown): void {
    this.finish({ kind: "destroy", reason });
  }

  refused(): void {
    this.finish({ kind: "refused" });
  }

  private finish(outcome: LeaseOutcome): void {
    if (this.returned) return;
    this.returned = true;
    this.giveBack(this.pooled, outcome);
  }
}
