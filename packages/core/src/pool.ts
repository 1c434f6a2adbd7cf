/**
 * The contract between core and a connection pool (`@tunnel-sh/pool`).
 *
 * The executor never opens connections itself: it acquires a lease on one channel of a pooled
 * connection, runs one remote process on it, and releases (clean) or destroys (suspect) the lease.
 *
 * Which layer owns which policy (the core helpers named here are on `@tunnel-sh/core/internal`):
 * - Target: a pool MUST check a target with core's `validateTarget` before any I/O, and key it with `targetKey`
 *   (plus a digest of `Transport.identity`, when there is one).
 * - Retries: a pool MUST NOT retry a failed connect; retries, their backoff and the circuit breaker are the executor's.
 * - Abort: `acquire` MUST reject with `AbortError` as soon as its signal aborts and leave the queue at once.
 * - Concurrency: operations are limited by the executor's `Limiter` (`maxConcurrent`); a pool limits connections
 *   and channels only.
 * - Channel budget: the pool owns it. A pool MUST NOT lend more channels on a connection than its budget (at most
 *   `Connection.maxChannels`), and on `Lease.refused()` MUST lower that connection's budget (core's
 *   `ChannelBudget` is the policy). The executor MUST hand every refusal back through `settleLease` and take
 *   another lease (`ChannelLease`), at most `MAX_CHANNEL_REFUSALS` times per attempt — for a command, and for each
 *   step of a transfer alike — and MUST NOT wait and open again on the refused lease: when and where the next
 *   channel opens is the pool's. A lease is one channel: work that needs a second channel at once (a transfer's
 *   parallel files, a remote hash beside a download) takes a second lease. The transport only reports a refusal.
 * - Health: the pool owns it. A pool MUST NOT lend a connection it knows closed, decides when an idle connection
 *   is pinged, and MUST honour `AcquireOptions.verify`. The executor never pings a lease itself.
 */
import type { Connection } from "./transport.js";
import type { Span } from "./tracer.js";
import type { Target } from "./types.js";

export interface AcquireOptions {
  /** Stop waiting for a lease; the acquire rejects with `AbortError`. */
  readonly signal?: AbortSignal;
  /**
   * The operation's span, opened by the executor with core's `startSpan`: the pool nests its
   * `tunnel.pool.acquire` and `tunnel.connect` spans under it. A pool MUST open every span with core's
   * `startSpan(tracer, name, { attributes, parent })`, passing this span (or its own acquire span) as `parent`,
   * never by calling `tracer.startSpan` directly: that is what hands the tracer its own parent span and keeps
   * the operation's secrets (its sudo password) out of the pool's spans. A pool MUST hand its `tunnel.connect`
   * span to the transport as `ConnectOptions.span`, and MUST NOT end the span it was given.
   */
  readonly parentSpan?: Span;
  /**
   * Lend only a connection checked just now: one opened for this acquire, or pinged for it (a failed ping evicts
   * the connection and the acquire goes on with another one). The executor asks for it before a retry, when the
   * connection the last attempt used may be why it failed. Default false: the pool's own idle check applies.
   */
  readonly verify?: boolean;
}

/**
 * Lends channels of connections to callers.
 * @example
 * const lease = await pool.acquire({ host: "web-1", user: "deploy" }, { signal });
 * try { await run(lease.connection); lease.release(); } catch (error) { lease.destroy(error); throw error; }
 */
export interface Pool {
  /**
   * Lease one channel on a healthy connection to `target`, connecting when needed.
   * Rejects with the connect error, `PoolTimeoutError` after the pool's acquire timeout,
   * `AbortError` when `signal` aborts, `PoolClosedError` after `close()`/`destroy()`.
   * Failed connects are not retried here: retries are the executor's.
   */
  acquire(target: Target, options?: AcquireOptions): Promise<Lease>;
  /** A snapshot of the pool's counters. */
  stats(): PoolStats;
  /** Stop lending, wait for leases to be released, close every connection. Idempotent. */
  close(): Promise<void>;
  /** Reject waiters and in-flight leases with `error`, close every connection now. Idempotent. */
  destroy(error?: unknown): Promise<void>;
}

/** One leased channel. Exactly one of `release()` / `destroy()` must be called; further calls are ignored. */
export interface Lease {
  readonly connection: Connection;
  /** The pool key of the connection (`user@host:port[#identity]`). */
  readonly key: string;
  /** Return the channel; the connection stays in the pool. */
  release(): void;
  /**
   * Return the channel and evict the connection: at once when `reason` is a connection error,
   * otherwise once its other channels are released.
   */
  destroy(reason?: unknown): void;
  /**
   * Tell the pool that the server refused a channel on this connection: it lowers the connection's channel
   * budget to what is in use, and the lease is returned. Optional for pools.
   */
  refused?(): void;
}

export interface PoolKeyStats {
  readonly connections: number;
  readonly busyChannels: number;
  readonly idleConnections: number;
  readonly waiting: number;
  readonly created: number;
  readonly evicted: Readonly<Record<string, number>>;
}

export interface PoolStats extends PoolKeyStats {
  readonly keys: Readonly<Record<string, PoolKeyStats>>;
  /** Acquire wait times in milliseconds: count and percentiles. */
  readonly acquireWaitMs: { readonly count: number; readonly p50: number; readonly p95: number; readonly max: number };
}
