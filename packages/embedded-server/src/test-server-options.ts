/**
 * Checks of `startTestServer`'s options, before any key is generated or port opened. This package does not depend on
 * `@tunnel-sh/core`, so it cannot throw core's `ConfigError`; `TestServerOptionError` carries the same `code` and
 * `field` and the same `field: message` form, and is a `TypeError` for code that knows neither.
 */
import type { TestServerFaults, TestServerOptions, TestServerUser } from "./test-server.js";

/** A bad option of `startTestServer`: an unknown key, or a value it cannot use. Thrown before any I/O. */
export class TestServerOptionError extends TypeError {
  override readonly name = "TestServerOptionError";
  /** Always `"CONFIG"`, as core's `ConfigError`. */
  readonly code = "CONFIG";
  /** The offending option, as a path from the options object: `maxSessions`, `users[1].pasword`, `faults.drop`. */
  readonly field: string;
  constructor(field: string, message: string) {
    super(`${field}: ${message}`);
    this.field = field;
  }
}

/** Keys of `TestServerOptions`; `satisfies` makes the compiler refuse a list that misses one. */
export const TEST_SERVER_OPTIONS = Object.keys({
  port: true,
  users: true,
  maxSessions: true,
  root: true,
  acceptEnv: true,
  env: true,
  faults: true,
  sessionHelper: true,
} satisfies Record<keyof TestServerOptions, true>);
/** Keys of `TestServerUser`. */
export const TEST_SERVER_USER_OPTIONS = Object.keys({ name: true, password: true, publicKeys: true } satisfies Record<keyof TestServerUser, true>);
/** Keys of `TestServerFaults`. */
export const TEST_SERVER_FAULT_OPTIONS = Object.keys({
  stallHandshake: true,
  handshakeDelayMs: true,
  channelDelayMs: true,
  refuseChannels: true,
  dropAfterBytes: true,
} satisfies Record<keyof TestServerFaults, true>);

/**
 * Throw a `TestServerOptionError` when `value` is not a plain object or holds a key not in `allowed`. `undefined`
 * passes. `path` is where `value` sits in the options (`""` for the options object itself).
 */
export function rejectUnknownTestServerOptions(value: unknown, allowed: readonly string[], path: string): void {
  if (value === undefined) return;
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new TestServerOptionError(path === "" ? "options" : path, `must be an object, got ${describeValue(value)}`);
  }
  for (const key of Object.keys(value)) {
    if (allowed.includes(key)) continue;
    throw new TestServerOptionError(
      path === "" ? key : `${path}.${key}`,
      `is not an option of startTestServer; known options${path === "" ? "" : ` of ${path}`}: ${allowed.join(", ")}`,
    );
  }
}

/** A value's kind for messages; never a string's content, which may be a password. */
function describeValue(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  if (typeof value === "number" || typeof value === "boolean") return `${typeof value} ${String(value)}`;
  return typeof value === "object" ? "an object" : typeof value;
}
