import { ConfigError, ConnectError, NoopTracer, TunnelError, startSpan } from "@tunnel-sh/core";
import type { Connection, Span, Target, Tracer, Transport } from "@tunnel-sh/core";
import { ChannelBudget, copyTarget, validateTarget } from "@tunnel-sh/core/internal";
import type { PendingConnect, Waiter } from "./acquire-queue.js";
import { resolvePoolConfig } from "./config.js";
import type { PoolConfig } from "./config.js";
import { generateConnectionKey } from "./connection-key.js";
import { startPing } from "./health-check.js";
import type { EvictionReason, PoolState } from "./pool-stats.js";
import { clearTimer, openConnections, unref } from "./pooled-connection.js";
import type { KeyState, PooledConnection } from "./pooled-connection.js";

/**
 * The connections of a pool, per key, from connect to close: connects (shared by waiters), health checks, idle and
 * lifetime timers, eviction, and the counts the limits are checked against. `ConnectionPool` adds the acquire queue
 * and the public interface on top. (After undici's `pool-base.js`.)
 */
export abstract class PoolBase {
  readonly config: PoolConfig;
  protected readonly tracer: Tracer;
  protected readonly keys = new Map<string, KeyState>();
  protected readonly pings = new Map<PooledConnection, () => void>();
  protected readonly drainListeners: (() => void)[] = [];
  protected state_: PoolState = "open";
  protected nextConnectionId = 1;
  protected openCount = 0;
  protected connectingCount = 0;
  protected closingCount = 0;
  /** Waiters that the last dispatch found blocked by `maxConnections` alone. */
  protected blockedOnTotal = 0;

  constructor(
    protected readonly transport: Transport,
    config: Partial<PoolConfig>,
    tracer: Tracer | undefined,
  ) {
    if (typeof transport !== "object" || transport === null || typeof transport.connect !== "function") {
      throw new ConfigError("transport", "must be a Transport with a connect() method");
    }
    this.config = resolvePoolConfig(config);
    this.tracer = tracer ?? new NoopTracer();
  }

  /** Serve the acquire queue: called whenever a connection, a channel or a slot may have become free. */
  protected abstract dispatch(): void;

  /** Take `waiter` out of the queue and reject it with `error`, recording `event` on its span. */
  protected abstract failWaiter(waiter: Waiter, error: unknown, event: string): void;

  protected drained(): Promise<void> {
    return new Promise((resolve) => {
      this.drainListeners.push(resolve);
      this.checkDrained();
    });
  }

  protected checkDrained(): void {
    if (this.state_ === "open") return;
    if (this.openCount + this.connectingCount + this.closingCount > 0) return;
    for (const listener of this.drainListeners.splice(0)) listener();
  }

  protected keyStateFor(target: Target): KeyState {
    validateTarget(target);
    const key = generateConnectionKey(target, this.transport.identity?.(target));
    let keyState = this.keys.get(key);
    if (!keyState) {
      keyState = {
        key,
        target: copyTarget(target),
        connections: new Set(),
        pending: new Set(),
        closing: 0,
        waiting: 0,
        created: 0,
        evicted: {},
      };
      this.keys.set(key, keyState);
    }
    return keyState;
  }

  protected connectBlocker(keyState: KeyState): "connecting" | "key" | "total" | undefined {
    if (this.state_ !== "open") return "total";
    if (keyState.pending.size >= this.config.maxConnectingPerKey) return "connecting";
    if (keyState.connections.size + keyState.pending.size + keyState.closing >= this.config.maxConnectionsPerKey) return "key";
    if (this.openCount + this.connectingCount + this.closingCount >= this.config.maxConnections) return "total";
    return undefined;
  }

  /** `parent`: the span of the acquire that needed the connect (others may share it); none for warm-up and replacements. */
  protected startConnect(keyState: KeyState, parent?: Span): PendingConnect {
    const controller = new AbortController();
    const pending: PendingConnect = {
      keyState,
      controller,
      waiters: new Set(),
      capacity: this.config.maxChannelsPerConnection,
      settled: Promise.resolve(undefined),
    };
    keyState.pending.add(pending);
    this.connectingCount += 1;
    const span = startSpan(this.tracer, "tunnel.connect", {
      attributes: {
        "tunnel.connection.key": keyState.key,
        "tunnel.transport": this.transport.name,
        "server.address": keyState.target.host,
        "server.port": keyState.target.port,
      },
      parent,
    });
    let connecting: Promise<Connection>;
    try {
      connecting = Promise.resolve(this.transport.connect(keyState.target, { signal: controller.signal, span }));
    } catch (error) {
      connecting = Promise.reject(error);
    }
    pending.settled = connecting.then(
      (connection) => {
        this.connected(pending, connection, span);
        return undefined;
      },
      (error: unknown) => this.connectFailed(pending, error, span),
    );
    return pending;
  }

  private connected(pending: PendingConnect, connection: Connection, span: Span): void {
    const keyState = pending.keyState;
    keyState.pending.delete(pending);
    this.connectingCount -= 1;
    span.end();
    if (this.state_ !== "open") {
      // The pool shut down while this connect was in flight and the transport finished it anyway.
      this.closeQuietly(keyState, connection);
      return;
    }
    const now = Date.now();
    const own = Number.isInteger(connection.maxChannels) && connection.maxChannels >= 1 ? connection.maxChannels : this.config.maxChannelsPerConnection;
    const pooled: PooledConnection = {
      id: this.nextConnectionId++,
      keyState,
      connection,
      createdAt: now,
      tracked: true,
      state: "open",
      budget: new ChannelBudget(Math.min(this.config.maxChannelsPerConnection, own)),
      busy: 0,
      uses: 0,
      lastActivityAt: now,
      verified: true,
      pinging: false,
      idleTimer: undefined,
      lifetimeTimer: undefined,
      stopListening: () => {},
    };
    keyState.connections.add(pooled);
    keyState.created += 1;
    this.openCount += 1;
    for (const waiter of pending.waiters) waiter.pending = undefined;
    pending.waiters.clear();
    try {
      pooled.stopListening = connection.onClose((error) => this.evict(pooled, error ? "lost" : "closed", true, error));
    } catch {
      // A connection that cannot report its close is still checked through `closed` before each lend.
    }
    if (Number.isFinite(this.config.maxLifetimeMs)) {
      pooled.lifetimeTimer = unref(
        setTimeout(() => {
          pooled.lifetimeTimer = undefined;
          this.evict(pooled, "lifetime", false);
        }, this.config.maxLifetimeMs),
      );
    }
    if (connection.closed) this.evict(pooled, "closed", true);
    else this.scheduleIdle(pooled);
    this.dispatch();
    pooled.verified = false;
  }

  private connectFailed(pending: PendingConnect, error: unknown, span: Span): unknown {
    const keyState = pending.keyState;
    keyState.pending.delete(pending);
    this.connectingCount -= 1;
    const failure = TunnelError.is(error)
      ? error
      : new ConnectError(`connecting to ${keyState.key} failed: ${error instanceof Error ? error.message : String(error)}`, {
          target: keyState.target,
          cause: error,
        });
    span.recordError(failure);
    span.end();
    for (const waiter of [...pending.waiters]) this.failWaiter(waiter, failure, "tunnel.pool.connect_failed");
    this.dispatch();
    this.checkDrained();
    return failure;
  }

  protected ping(pooled: PooledConnection): void {
    pooled.pinging = true;
    const cancel = startPing(pooled.connection, pooled.keyState.target, pooled.keyState.key, this.config.pingTimeoutMs, (error) => {
      this.pings.delete(pooled);
      pooled.pinging = false;
      if (error === undefined) {
        pooled.lastActivityAt = Date.now();
        pooled.verified = true;
      } else {
        this.evict(pooled, "ping-failed", true, error);
      }
      this.dispatch();
      pooled.verified = false;
      // The acquire that asked for the ping may have left meanwhile: an unlent connection still expires.
      if (pooled.tracked && pooled.state === "open" && pooled.busy === 0 && pooled.idleTimer === undefined) this.scheduleIdle(pooled);
    });
    this.pings.set(pooled, () => {
      cancel();
      this.pings.delete(pooled);
      pooled.pinging = false;
    });
  }

  /**
   * Evict `pooled` once it has been idle for `idleTimeoutMs` since its last activity. A timer already set stays: when
   * it fires it sets itself again for what is left since the last activity, so a connection in steady use costs no
   * timer per lease.
   */
  protected scheduleIdle(pooled: PooledConnection): void {
    if (pooled.idleTimer !== undefined || !Number.isFinite(this.config.idleTimeoutMs)) return;
    this.armIdle(pooled, this.config.idleTimeoutMs);
  }

  private armIdle(pooled: PooledConnection, delayMs: number): void {
    pooled.idleTimer = unref(
      setTimeout(() => {
        pooled.idleTimer = undefined;
        // Busy: the lease that ends last schedules again.
        if (pooled.busy > 0 || pooled.state !== "open" || pooled.pinging) return;
        const left = pooled.lastActivityAt + this.config.idleTimeoutMs - Date.now();
        if (left > 0) {
          this.armIdle(pooled, left);
          return;
        }
        if (openConnections(pooled.keyState) <= this.config.minIdlePerKey) return;
        this.evict(pooled, "idle", false);
      }, delayMs),
    );
  }

  /**
   * Stop lending `pooled`. It closes now when `immediate` or idle; otherwise it drains: it closes when its last
   * lease is returned. Counted once per connection, under the first reason.
   */
  protected evict(pooled: PooledConnection, reason: EvictionReason, immediate: boolean, error?: unknown): void {
    if (!pooled.tracked) return;
    if (pooled.state === "draining" && !immediate) return;
    if (pooled.state === "open") {
      pooled.state = "draining";
      const keyState = pooled.keyState;
      keyState.evicted[reason] = (keyState.evicted[reason] ?? 0) + 1;
      const span = startSpan(this.tracer, "tunnel.pool.evict", {
        attributes: {
          "tunnel.connection.key": keyState.key,
          "tunnel.pool.evict_reason": reason,
          "tunnel.pool.connection_id": pooled.id,
          "tunnel.pool.uses": pooled.uses,
          "tunnel.pool.busy_channels": pooled.busy,
          "tunnel.pool.connection.age": (Date.now() - pooled.createdAt) / 1000,
        },
      });
      if (error !== undefined) span.recordError(error);
      span.end();
    }
    clearTimer(pooled.idleTimer);
    pooled.idleTimer = undefined;
    clearTimer(pooled.lifetimeTimer);
    pooled.lifetimeTimer = undefined;
    this.pings.get(pooled)?.();
    if (immediate || pooled.busy === 0) this.closeConnection(pooled);
    // Replace what minIdlePerKey keeps, but not a connection that died before it was ever lent: a host that
    // accepts and drops at once would otherwise be reconnected in a loop, and the pool never retries.
    if ((reason === "lifetime" || (pooled.uses > 0 && !reason.startsWith("pool-"))) && reason !== "idle" && reason !== "make-room") {
      this.replenish(pooled.keyState);
    }
    this.dispatch();
  }

  protected closeConnection(pooled: PooledConnection): void {
    if (!pooled.tracked) return;
    pooled.tracked = false;
    pooled.state = "draining";
    pooled.keyState.connections.delete(pooled);
    this.openCount -= 1;
    pooled.stopListening();
    clearTimer(pooled.idleTimer);
    clearTimer(pooled.lifetimeTimer);
    pooled.idleTimer = undefined;
    pooled.lifetimeTimer = undefined;
    this.closeQuietly(pooled.keyState, pooled.connection);
  }

  /** Close a connection the pool no longer lends; its slot counts against the limits until the close completes. */
  private closeQuietly(keyState: KeyState, connection: Connection): void {
    keyState.closing += 1;
    this.closingCount += 1;
    let closing: Promise<void>;
    try {
      closing = Promise.resolve(connection.close());
    } catch {
      closing = Promise.resolve();
    }
    void closing
      .catch(() => {})
      .then(() => {
        keyState.closing -= 1;
        this.closingCount -= 1;
        this.dispatch();
        this.checkDrained();
      });
  }

  /** Keep `minIdlePerKey` connections to a key that is in use. Never retries: a failed connect waits for the next trigger. */
  protected replenish(keyState: KeyState): void {
    if (this.state_ !== "open" || this.config.minIdlePerKey === 0) return;
    while (
      openConnections(keyState) + keyState.pending.size < this.config.minIdlePerKey &&
      this.connectBlocker(keyState) === undefined &&
      this.blockedOnTotal === 0
    ) {
      this.startConnect(keyState);
    }
  }
}
