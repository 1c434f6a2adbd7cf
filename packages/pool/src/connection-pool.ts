import { PoolClosedError, PoolTimeoutError, ValidationError, isConnectionError, startSpan } from "@tunnel-sh/core";
import type { AcquireOptions, Lease, Pool, Span, Target, Tracer, Transport } from "@tunnel-sh/core";
import { abortError, attach, raceAcquireAbort } from "./acquire-queue.js";
import type { PendingConnect, Waiter } from "./acquire-queue.js";
import type { PoolConfig } from "./config.js";
import { PoolBase } from "./pool-base.js";
import { PoolLease } from "./pool-lease.js";
import type { LeaseOutcome } from "./pool-lease.js";
import { collectPoolStats } from "./pool-stats.js";
import type { ConnectionPoolStats, EvictionReason, PoolState } from "./pool-stats.js";
import { clearTimer, freeChannelsBeingPinged, leastRecentlyUsedIdle, needsPing, openConnections, staleCandidate } from "./pooled-connection.js";
import type { KeyState, PooledConnection } from "./pooled-connection.js";
import { WaitRecorder } from "./wait-recorder.js";

/**
 * A keyed pool of connections made by any `Transport`, lending one channel per lease.
 * See the package README for limits, fairness, health checks and shutdown.
 * @example
 * await using pool = new ConnectionPool(new Ssh2Transport({ knownHostsFile }), DefaultPoolConfig(), tracer);
 * const lease = await pool.acquire({ host: "web-1", user: "deploy" }, { signal });
 */
export class ConnectionPool extends PoolBase implements Pool, AsyncDisposable {
  /** Every waiting acquire, oldest first, across all keys. */
  private readonly queue = new Set<Waiter>();
  private readonly waits = new WaitRecorder();
  private dispatching = false;
  private dispatchAgain = false;
  private closePromise: Promise<void> | undefined;
  private destroyPromise: Promise<void> | undefined;

  /**
   * @param transport makes the connections; the pool closes every connection it made.
   * @param config a full or partial `PoolConfig`; missing fields take `DefaultPoolConfig()`'s values.
   *   Throws `ConfigError` naming the field when a value is invalid.
   * @param tracer receives `tunnel.pool.acquire`, `tunnel.connect` and `tunnel.pool.evict` spans. Default: no tracing.
   */
  constructor(transport: Transport, config: Partial<PoolConfig> = {}, tracer?: Tracer) {
    super(transport, config, tracer);
  }

  get state(): PoolState {
    return this.state_;
  }

  acquire(target: Target, options: AcquireOptions = {}): Promise<Lease> {
    if (this.state_ !== "open") return Promise.reject(new PoolClosedError(undefined, { target }));
    let keyState: KeyState;
    try {
      keyState = this.keyStateFor(target);
    } catch (error) {
      return Promise.reject(error);
    }
    const signal = options.signal;
    if (signal?.aborted) return Promise.reject(abortError(signal, keyState.target));
    const span = startSpan(this.tracer, "tunnel.pool.acquire", {
      attributes: { "tunnel.connection.key": keyState.key, "tunnel.pool.queue_position": this.queue.size, "tunnel.transport": this.transport.name },
      parent: options.parentSpan,
    });
    // Nobody waits and a connection has a free channel: lend it now, as the dispatch would (no waiter, timer or listener).
    if (this.queue.size === 0 && !this.dispatching) {
      const pooled = this.lendable(keyState, options.verify === true ? 0 : this.config.pingAfterIdleMs);
      if (pooled) {
        const lease = this.lend(pooled, span, Date.now(), false);
        this.replenish(keyState);
        return Promise.resolve(lease);
      }
    }
    return new Promise<Lease>((resolve, reject) => {
      const waiter: Waiter = {
        keyState,
        enqueuedAt: Date.now(),
        verify: options.verify === true,
        span,
        resolve,
        reject,
        pending: undefined,
        connected: false,
        timer: undefined,
        stopListening: undefined,
      };
      this.queue.add(waiter);
      keyState.waiting += 1;
      if (Number.isFinite(this.config.acquireTimeoutMs)) {
        waiter.timer = setTimeout(() => {
          waiter.timer = undefined;
          const error = new PoolTimeoutError(`no channel to ${keyState.key} became free within ${this.config.acquireTimeoutMs} ms`, {
            target: keyState.target,
          });
          this.failWaiter(waiter, error, "tunnel.pool.acquire_timeout");
        }, this.config.acquireTimeoutMs);
      }
      if (signal) {
        const onAbort = (): void => this.failWaiter(waiter, abortError(signal, keyState.target), "tunnel.pool.acquire_aborted");
        signal.addEventListener("abort", onAbort, { once: true });
        waiter.stopListening = () => signal.removeEventListener("abort", onAbort);
      }
      this.dispatch();
      if (this.queue.has(waiter) && this.queue.size > this.config.maxWaiting) {
        const error = new PoolTimeoutError(`the acquire queue is full (maxWaiting ${this.config.maxWaiting})`, {
          target: keyState.target,
        });
        this.failWaiter(waiter, error, "tunnel.pool.queue_overflow");
      }
      this.replenish(keyState);
    });
  }

  /**
   * Open connections to `target` until it has `count` (default: `minIdlePerKey`, at least 1), within the limits.
   * Resolves with the number of open connections to the key; rejects with the first failed connect it started.
   */
  async warm(target: Target, count = Math.max(1, this.config.minIdlePerKey), options: AcquireOptions = {}): Promise<number> {
    if (this.state_ !== "open") throw new PoolClosedError(undefined, { target });
    const keyState = this.keyStateFor(target);
    if (!Number.isInteger(count) || count < 1) throw new ValidationError("count", `must be a whole number of at least 1, got ${count}`);
    const signal = options.signal;
    if (signal?.aborted) throw abortError(signal, keyState.target);
    const mine = new Set<PendingConnect>();
    const failures: unknown[] = [];
    while (this.state_ === "open" && failures.length === 0 && openConnections(keyState) < count) {
      while (
        mine.size < count &&
        openConnections(keyState) + keyState.pending.size < count &&
        this.connectBlocker(keyState) === undefined &&
        this.blockedOnTotal === 0
      ) {
        const pending = this.startConnect(keyState);
        mine.add(pending);
        void pending.settled.then((error) => {
          if (error !== undefined) failures.push(error);
        });
      }
      if (keyState.pending.size === 0) break;
      await raceAcquireAbort(Promise.race([...keyState.pending].map((pending) => pending.settled)), signal, keyState.target);
    }
    if (this.state_ !== "open") throw new PoolClosedError(undefined, { target });
    if (failures.length > 0) throw failures[0];
    return openConnections(keyState);
  }

  stats(): ConnectionPoolStats {
    return collectPoolStats(this.state_, this.keys.values(), this.queue.size, this.waits);
  }

  /**
   * Drain: reject waiting and new acquires with `PoolClosedError`, abort connects in flight, close idle
   * connections now and busy ones once their last lease is returned. Resolves when every connection is closed.
   */
  close(): Promise<void> {
    if (this.destroyPromise) return this.destroyPromise;
    if (this.closePromise) return this.closePromise;
    this.state_ = "closing";
    const error = new PoolClosedError();
    this.shutDown(error, "pool-closed", false);
    this.closePromise = this.drained().then(() => {
      if (this.state_ === "closing") this.state_ = "closed";
    });
    return this.closePromise;
  }

  /**
   * Stop at once: reject waiting acquires with `error` (default `PoolClosedError`), abort connects in flight and
   * close every connection, busy or not (processes on them end with `CONNECTION_LOST`). Resolves when all are closed.
   */
  destroy(error?: unknown): Promise<void> {
    if (this.destroyPromise) return this.destroyPromise;
    if (this.state_ === "closed" && this.closePromise) return this.closePromise;
    this.state_ = "destroyed";
    this.shutDown(error ?? new PoolClosedError("the connection pool was destroyed"), "pool-destroyed", true);
    this.destroyPromise = this.drained();
    return this.destroyPromise;
  }

  /** `await using pool = new ConnectionPool(...)` closes (drains) the pool at the end of the scope. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  private shutDown(error: unknown, reason: EvictionReason, immediate: boolean): void {
    for (const waiter of [...this.queue]) this.failWaiter(waiter, error, "tunnel.pool.closed");
    for (const cancel of [...this.pings.values()]) cancel();
    for (const keyState of this.keys.values()) {
      for (const pending of keyState.pending) pending.controller.abort(error);
      for (const pooled of [...keyState.connections]) this.evict(pooled, reason, immediate);
    }
    this.checkDrained();
  }

  /**
   * Serve the queue in order. A waiter takes a free channel on its key's least-loaded healthy connection; else
   * it shares a connect in flight that has room; else it starts a connect if the limits allow; else it waits.
   * Connects start only here, oldest waiter first, so a freed connection slot goes to the longest waiter of any key.
   */
  protected override dispatch(): void {
    if (this.dispatching) {
      this.dispatchAgain = true;
      return;
    }
    this.dispatching = true;
    try {
      do {
        this.dispatchAgain = false;
        this.dispatchOnce();
      } while (this.dispatchAgain);
    } finally {
      this.dispatching = false;
    }
  }

  private dispatchOnce(): void {
    if (this.state_ !== "open") return;
    if (this.queue.size === 0) {
      this.blockedOnTotal = 0;
      return;
    }
    // Free channels on connections being pinged, per key: waiters that expect them do not start connects.
    const pingCredit = new Map<KeyState, number>();
    let blockedOnTotal = 0;
    for (const waiter of this.queue) {
      const keyState = waiter.keyState;
      if (!pingCredit.has(keyState)) pingCredit.set(keyState, freeChannelsBeingPinged(keyState));
      // A waiter that asked for `verify` takes only a connection opened or pinged in this dispatch.
      const pingAfterIdleMs = waiter.verify ? 0 : this.config.pingAfterIdleMs;
      const pooled = this.lendable(keyState, pingAfterIdleMs);
      if (pooled) {
        this.grant(waiter, pooled);
        continue;
      }
      if (waiter.pending) continue;
      const credit = pingCredit.get(keyState) ?? 0;
      if (credit > 0) {
        pingCredit.set(keyState, credit - 1);
        continue;
      }
      const stale = staleCandidate(keyState, pingAfterIdleMs);
      if (stale) {
        this.ping(stale);
        pingCredit.set(keyState, stale.budget.limit - stale.busy - 1);
        continue;
      }
      const shared = [...keyState.pending].find((pending) => pending.waiters.size < pending.capacity);
      if (shared) {
        attach(waiter, shared);
        continue;
      }
      const blocker = this.connectBlocker(keyState);
      if (blocker === undefined) {
        attach(waiter, this.startConnect(keyState, waiter.span));
      } else if (blocker === "total") {
        blockedOnTotal += 1;
        // Slots already being freed will reach the oldest blocked waiters first; only make room beyond them.
        if (blockedOnTotal > this.closingCount) this.makeRoom();
      }
    }
    this.blockedOnTotal = blockedOnTotal;
  }

  /** The least-loaded open connection with a free channel that needs no ping first. */
  private lendable(keyState: KeyState, pingAfterIdleMs: number): PooledConnection | undefined {
    let best: PooledConnection | undefined;
    const now = Date.now();
    for (const pooled of keyState.connections) {
      if (pooled.state !== "open" || pooled.pinging || pooled.busy >= pooled.budget.limit) continue;
      if (pooled.connection.closed) {
        this.evict(pooled, "closed", true);
        continue;
      }
      if (needsPing(pooled, now, pingAfterIdleMs)) continue;
      if (!best || pooled.busy < best.busy) best = pooled;
    }
    return best;
  }

  /** Close the least recently used idle connection of any key, to free a slot under `maxConnections`. */
  private makeRoom(): boolean {
    const victim = leastRecentlyUsedIdle(this.keys.values());
    if (!victim) return false;
    this.evict(victim, "make-room", true);
    return true;
  }

  private grant(waiter: Waiter, pooled: PooledConnection): void {
    this.removeWaiter(waiter);
    waiter.resolve(this.lend(pooled, waiter.span, waiter.enqueuedAt, waiter.connected));
  }

  /** One channel of `pooled` for an acquire that started at `enqueuedAt`; ends the acquire's span. */
  private lend(pooled: PooledConnection, span: Span, enqueuedAt: number, connected: boolean): PoolLease {
    const now = Date.now();
    pooled.busy += 1;
    pooled.uses += 1;
    pooled.lastActivityAt = now;
    const waited = now - enqueuedAt;
    this.waits.record(waited);
    span.setAttributes({
      "tunnel.pool.wait_time": waited / 1000,
      "tunnel.pool.connected": connected,
      "tunnel.pool.connection_id": pooled.id,
    });
    span.end();
    return new PoolLease(pooled, this.giveBack);
  }

  private removeWaiter(waiter: Waiter): void {
    this.queue.delete(waiter);
    waiter.keyState.waiting -= 1;
    if (waiter.pending) waiter.pending.waiters.delete(waiter);
    waiter.pending = undefined;
    clearTimer(waiter.timer);
    waiter.timer = undefined;
    waiter.stopListening?.();
    waiter.stopListening = undefined;
  }

  protected override failWaiter(waiter: Waiter, error: unknown, event: string): void {
    if (!this.queue.has(waiter)) return;
    this.removeWaiter(waiter);
    waiter.span.addEvent(event);
    waiter.span.setAttributes({ "tunnel.pool.wait_time": (Date.now() - waiter.enqueuedAt) / 1000, "tunnel.pool.connected": waiter.connected });
    waiter.span.recordError(error);
    waiter.span.end();
    waiter.reject(error);
    // A waiter that leaves may unblock nothing, but it changes who is oldest; keep the bookkeeping current.
    this.dispatch();
  }

  private readonly giveBack = (pooled: PooledConnection, outcome: LeaseOutcome): void => {
    pooled.busy -= 1;
    pooled.lastActivityAt = Date.now();
    if (!pooled.tracked) return;
    if (outcome.kind === "destroy") {
      this.evict(pooled, "destroyed", isConnectionError(outcome.reason), outcome.reason);
    } else if (outcome.kind === "refused") {
      if (!pooled.budget.refused(pooled.busy)) this.evict(pooled, "refused", true);
    } else {
      pooled.budget.released();
    }
    if (!pooled.tracked) return;
    if (pooled.busy === 0) {
      if (pooled.state === "draining") this.closeConnection(pooled);
      else this.scheduleIdle(pooled);
    }
    this.dispatch();
  };
}
