import { createHash } from "node:crypto";
import { targetKey } from "@tunnel-sh/core/internal";
import type { Target } from "@tunnel-sh/core";

/**
 * The pool key of a target: connections are shared only between targets with the same key.
 *
 * Format: `user@host:port`, then `#` and a 12-digit hex digest of the identity when the transport reports one
 * for the target (`Transport.identity`, e.g. a jump host or an identity file).
 * - A missing `user` or `port` renders as an empty string: `{ host: "web-1" }` → `@web-1:`.
 *   The transport picks them when it connects (ssh_config, then the local user and 22), which the pool
 *   cannot know beforehand, so `{ host: "web-1" }` and `{ host: "web-1", user: "root", port: 22 }` never
 *   share connections even when they end up at the same place.
 * - IPv6 addresses are bracketed: `{ host: "::1", user: "deploy", port: 2222 }` → `deploy@[::1]:2222`.
 * - Nothing else is normalised: host names are compared as written (`Web-1` and `web-1` are two keys).
 * - The identity itself never appears: it may name local files (an identity file, an ssh_config), and the key
 *   is in stats, traces and metric series. Different identities give different digests.
 *
 * The format is stable: it appears in stats, traces and results.
 * @example generateConnectionKey({ host: "web-1", user: "root", port: 22 }) // "root@web-1:22"
 * @example generateConnectionKey({ host: "db", user: "ops", port: 22 }, "i=/home/ops/.ssh/id_ed25519") // "ops@db:22#" + 12 hex digits
 */
export function generateConnectionKey(target: Target, identity?: string): string {
  // The executor keys breakers, spans and results with core's `targetKey`; the pool key is the same plus the identity.
  const key = targetKey(target);
  return identity ? `${key}#${identityDigest(identity)}` : key;
}

function identityDigest(identity: string): string {
  return createHash("sha256").update(identity).digest("hex").slice(0, 12);
}
