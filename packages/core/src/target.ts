/**
 * A target's identity: how tunnel names a host in keys, messages and copies. Every package uses these three and
 * `validateTarget` (validate.ts, the one rule set for a target's fields) instead of writing its own.
 */
import type { Target } from "./types.js";

/**
 * The key of a target in breakers, spans, results and (with an identity digest) the pool: `user@host:port`, an
 * empty part where the field is unknown, IPv6 addresses bracketed.
 * @example targetKey({ host: "web-1", user: "root", port: 22 }) // "root@web-1:22"
 * @example targetKey({ host: "::1" }) // "@[::1]:"
 */
export function targetKey(target: Target): string {
  const host = target.host.includes(":") ? `[${target.host}]` : target.host;
  return `${target.user ?? ""}@${host}:${target.port ?? ""}`;
}

/**
 * A target rendered for messages: `user@host:port`, leaving out the parts that are unknown.
 * @example formatTarget({ host: "web-1", port: 2222 }) // "web-1:2222"
 */
export function formatTarget(target: Target | undefined): string {
  if (!target) return "";
  const user = target.user ? `${target.user}@` : "";
  const port = target.port !== undefined ? `:${target.port}` : "";
  return `${user}${target.host}${port}`;
}

/** The target fields of `request` alone (a command, a script, a transfer), in a new object without undefined members. */
export function copyTarget(request: Target): Target {
  const { host, port, user } = request;
  return { host, ...(port !== undefined ? { port } : {}), ...(user !== undefined ? { user } : {}) };
}
