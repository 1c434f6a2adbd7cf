/**
 * Redis connections and the few keys the queue keeps beside BullMQ's own.
 */
import { ConfigError } from "@tunnel-sh/core";
import { Redis } from "ioredis";
import type { RedisOptions } from "ioredis";

/** Where Redis is: a URL (`redis://127.0.0.1:6379/0`, `rediss://...`) or ioredis options. */
export type RedisLocation = string | RedisOptions;

export const DEFAULT_QUEUE_NAME = "tunnel";
export const DEFAULT_PREFIX = "bull";

/** A new connection the caller of this function owns and must `quit()`. BullMQ needs `maxRetriesPerRequest: null`. */
export function connectRedis(location: RedisLocation): Redis {
  const redis = typeof location === "string" ? new Redis(location, { maxRetriesPerRequest: null }) : new Redis({ ...location, maxRetriesPerRequest: null });
  // ioredis reconnects by itself and prints errors nobody listens to; requests report an unreachable Redis instead.
  redis.on("error", () => undefined);
  return redis;
}

export function validateLocation(location: unknown, field = "redis"): asserts location is RedisLocation {
  if (typeof location === "string") {
    if (!/^rediss?:\/\//.test(location)) throw new ConfigError(field, `must be a redis:// or rediss:// URL, got ${JSON.stringify(location)}`);
    try {
      new URL(location);
    } catch {
      throw new ConfigError(field, `is not a valid URL: ${JSON.stringify(location)}`);
    }
    return;
  }
  if (typeof location !== "object" || location === null) throw new ConfigError(field, "must be a redis:// URL or ioredis options");
}

export function validateQueueName(name: unknown, field = "queue"): asserts name is string {
  if (typeof name !== "string" || name.length === 0 || name.includes(":"))
    throw new ConfigError(field, `must be a non-empty name without ":", got ${JSON.stringify(name)}`);
}

/** Where a producer's or a worker's queue lives, checked (a `ConfigError` naming the field), defaults applied. */
export function resolveQueueLocation(options: { readonly redis: unknown; readonly queue?: unknown; readonly prefix?: unknown }): {
  readonly queueName: string;
  readonly prefix: string;
} {
  validateLocation(options.redis);
  const queueName = options.queue ?? DEFAULT_QUEUE_NAME;
  validateQueueName(queueName);
  const prefix = options.prefix ?? DEFAULT_PREFIX;
  validateQueueName(prefix, "prefix");
  return { queueName, prefix };
}

/** The pub/sub channel producers announce cancellations on. */
export function cancelChannel(prefix: string, queue: string): string {
  return `${prefix}:${queue}:tunnel:cancel`;
}

/** A short-lived marker that a job was cancelled, for a worker that picks the job up after the announcement. */
export function cancelMarker(prefix: string, queue: string, jobId: string): string {
  return `${prefix}:${queue}:tunnel:cancelled:${jobId}`;
}

/** Quit a connection, dropping it when Redis is gone (a quit would wait for a reconnect that never comes). */
export async function quietQuit(redis: Redis): Promise<void> {
  if (redis.status === "end") return;
  if (redis.status !== "ready") {
    redis.disconnect();
    return;
  }
  try {
    await redis.quit();
  } catch {
    redis.disconnect();
  }
}

/** Wait for `work`, at most `ms`; resolves either way. */
export async function atMost(work: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    work.then(
      () => undefined,
      () => undefined,
    ),
    new Promise<void>((resolve) => (timer = setTimeout(resolve, ms))),
  ]);
  clearTimeout(timer);
}
