/**
 * Secret redaction for everything tunnel writes about an operation: span attributes, span events and error
 * messages, in every tracer.
 *
 * A `Redactor` holds secrets (sudo passwords, authentication passwords, key passphrases, env values a caller
 * marks secret) and replaces every occurrence of any of them with `[REDACTED]`. Redactors form a tree:
 * `redactor.child([sudoPassword])` makes a per-operation redactor that also honours every secret of its
 * parent, including ones added to the parent later; `Redactor.merge(a, b)` honours both.
 *
 * Typical wiring: one long-lived redactor given to the executor (and to the tracer, for what it prints on its
 * own); the executor derives a child per operation holding that operation's secrets and opens the operation's
 * span with it through `startSpan` (traced-span.ts), so every span under the operation is redacted too.
 *
 * @example
 * const redactor = new Redactor();
 * redactor.add(process.env.DEPLOY_TOKEN ?? "");
 * const executor = new Executor(pool, ProductionExecutorConfig(), tracer, { redactor });
 * // per operation, inside the executor:
 * const span = startSpan(tracer, "tunnel.command", { attributes, redactor: redactor.child([sudoPassword]) });
 */
import { TunnelError } from "./errors.js";
import { formatTarget } from "./target.js";
import type { ErrorCode, ErrorPhase } from "./errors.js";
import { quote } from "./quote.js";
import type { Attributes, AttributeValue } from "./tracer.js";

/** What every secret occurrence is replaced with. */
export const REDACTED = "[REDACTED]";

/**
 * Secrets shorter than this are not searched for inside text: replacing every `"ab"` in every attribute,
 * command line and message would mangle the output and, by the pattern of the holes, hint at the secret.
 * A shorter secret is still redacted when a whole string value equals it. Register longer secrets.
 */
export const MIN_SECRET_LENGTH = 3;

/** A safe, printable summary of an error: every string redacted, the cause reduced to name and message. */
export interface ErrorSummary {
  /**
   * A low-cardinality type for metrics and `error.type`: a tunnel error's `code` (`"CONNECT"`), else the
   * error's name (`"TypeError"`), else `"Error"`.
   */
  readonly type: string;
  /** The error's class name, e.g. `"ConnectError"`. */
  readonly name: string;
  /** The tunnel error code, when the error is a `TunnelError` (from any installed copy of core). */
  readonly code: ErrorCode | undefined;
  /** The message, redacted. */
  readonly message: string;
  readonly phase: ErrorPhase | undefined;
  readonly retryable: boolean | undefined;
  /** The target as `user@host:port`, when the error carries one. */
  readonly target: string | undefined;
  /** The stack trace, redacted (its first line repeats the message). */
  readonly stack: string | undefined;
  /** The direct cause, reduced to its name and redacted message. */
  readonly cause: { readonly name: string; readonly message: string } | undefined;
}

/** Bumped on every `add()` anywhere, so cached patterns notice additions to any ancestor. */
let generation = 0;

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/** Holds secrets and removes them from text. See the module comment for the tree of redactors. */
export class Redactor {
  readonly #secrets = new Set<string>();
  readonly #shortSecrets = new Set<string>();
  #parents: readonly Redactor[] = [];
  #cache: { readonly generation: number; readonly pattern: RegExp | undefined; readonly short: ReadonlySet<string> } | undefined;

  /** @param secrets initial secrets, each handled as by `add`. */
  constructor(secrets: Iterable<string> = []) {
    for (const secret of secrets) this.add(secret);
  }

  /**
   * Register a secret. Empty strings are ignored; secrets shorter than `MIN_SECRET_LENGTH` are only redacted
   * where a whole value equals them. The secret's shell-quoted form (how an env value appears on a prepared
   * command line) and its whitespace-trimmed form are registered with it. Returns `this`.
   * @example redactor.add(sudoPassword).add(apiToken);
   */
  add(secret: string): this {
    if (typeof secret !== "string" || secret.length === 0) return this;
    const forms = new Set([secret, secret.trim()]);
    try {
      forms.add(quote(secret));
    } catch {
      // A NUL byte cannot be quoted; the raw form is still registered.
    }
    for (const form of forms) {
      if (form.length === 0) continue;
      if (form.length < MIN_SECRET_LENGTH) this.#shortSecrets.add(form);
      else this.#secrets.add(form);
    }
    generation += 1;
    return this;
  }

  /** Register several secrets. Returns `this`. */
  addAll(secrets: Iterable<string>): this {
    for (const secret of secrets) this.add(secret);
    return this;
  }

  /**
   * A redactor with `secrets` of its own that also redacts everything this one does, now and later.
   * Adding to the child never changes the parent. Use one per operation for its sudo password.
   */
  child(secrets: Iterable<string> = []): Redactor {
    const child = new Redactor(secrets);
    child.#parents = [this];
    return child;
  }

  /** A redactor that redacts what any of `redactors` does, now and later. */
  static merge(...redactors: readonly (Redactor | undefined)[]): Redactor {
    const merged = new Redactor();
    merged.#parents = redactors.filter((redactor): redactor is Redactor => redactor !== undefined);
    return merged;
  }

  /** True when no secret is registered here or in any ancestor. */
  get empty(): boolean {
    const { pattern, short } = this.#compiled();
    return pattern === undefined && short.size === 0;
  }

  /**
   * `text` with every occurrence of every secret replaced by `[REDACTED]`. Longer secrets win where secrets
   * overlap (a password and its prefix), and replacement is a single pass, so a secret that happens to be a
   * piece of `[REDACTED]` never mangles a marker.
   */
  redact(text: string): string {
    if (typeof text !== "string" || text.length === 0) return text;
    const { pattern, short } = this.#compiled();
    if (short.has(text)) return REDACTED;
    if (pattern === undefined) return text;
    return text.replace(pattern, REDACTED);
  }

  /** One attribute value: strings and string arrays redacted, numbers and booleans unchanged. */
  redactValue<T extends AttributeValue | undefined>(value: T): T {
    if (typeof value === "string") return this.redact(value) as T;
    if (Array.isArray(value) && value.some((item) => typeof item === "string")) {
      return (value as readonly (string | number)[]).map((item) => (typeof item === "string" ? this.redact(item) : item)) as unknown as T;
    }
    return value;
  }

  /** A copy of `attributes` with every string value redacted (keys are tunnel's own names and kept). */
  redactAttributes(attributes: Attributes | undefined): Record<string, AttributeValue> {
    const out: Record<string, AttributeValue> = {};
    if (!attributes) return out;
    for (const [key, value] of Object.entries(attributes)) {
      if (value === undefined) continue;
      out[key] = this.redactValue(value);
    }
    return out;
  }

  /** A printable summary of any thrown value with every string redacted. Never throws. */
  redactError(error: unknown): ErrorSummary {
    try {
      return this.#summarize(error);
    } catch {
      return {
        type: "Error",
        name: "Error",
        code: undefined,
        message: "an error that could not be described",
        phase: undefined,
        retryable: undefined,
        target: undefined,
        stack: undefined,
        cause: undefined,
      };
    }
  }

  /**
   * A copy of `error` whose message, stack, string fields and causes are redacted, with the same prototype
   * (so `TunnelError.is`, `code` and subclass fields still work). Returns `error` itself when nothing needed
   * redacting, and non-object values other than strings unchanged.
   */
  redactErrorObject<T>(error: T): T {
    try {
      return this.#copyError(error, 0) as T;
    } catch {
      return error;
    }
  }

  #summarize(error: unknown): ErrorSummary {
    if (typeof error !== "object" || error === null) {
      const message = this.redact(typeof error === "string" ? error : String(error));
      return {
        type: "Error",
        name: "Error",
        code: undefined,
        message,
        phase: undefined,
        retryable: undefined,
        target: undefined,
        stack: undefined,
        cause: undefined,
      };
    }
    const record = error as { name?: unknown; message?: unknown; stack?: unknown; cause?: unknown };
    const name = typeof record.name === "string" && record.name.length > 0 ? record.name : "Error";
    const message = this.redact(typeof record.message === "string" ? record.message : String(error));
    const stack = typeof record.stack === "string" ? this.redact(record.stack) : undefined;
    let cause: ErrorSummary["cause"];
    if (typeof record.cause === "object" && record.cause !== null) {
      const inner = record.cause as { name?: unknown; message?: unknown };
      cause = {
        name: typeof inner.name === "string" ? inner.name : "Error",
        message: this.redact(typeof inner.message === "string" ? inner.message : String(inner)),
      };
    } else if (record.cause !== undefined) {
      cause = { name: "Error", message: this.redact(String(record.cause)) };
    }
    if (TunnelError.is(error)) {
      return {
        type: error.code,
        name,
        code: error.code,
        message,
        phase: error.phase,
        retryable: error.retryable,
        target: error.target ? this.redact(formatTarget(error.target)) : undefined,
        stack,
        cause,
      };
    }
    return { type: name, name, code: undefined, message, phase: undefined, retryable: undefined, target: undefined, stack, cause };
  }

  #copyError(value: unknown, depth: number): unknown {
    if (typeof value === "string") return this.redact(value);
    if (typeof value !== "object" || value === null || depth > 3) return value;
    if (Array.isArray(value)) {
      const items = value.map((item) => this.#copyError(item, depth + 1));
      return items.every((item, index) => item === value[index]) ? value : items;
    }
    if (!(value instanceof Error) && !TunnelError.is(value)) return value;
    let changed = false;
    const copy = Object.create(Object.getPrototypeOf(value) as object) as Record<PropertyKey, unknown>;
    for (const key of Reflect.ownKeys(value)) {
      const descriptor = Object.getOwnPropertyDescriptor(value, key);
      if (!descriptor) continue;
      if ("value" in descriptor) {
        const original: unknown = descriptor.value;
        const redacted = typeof original === "string" || Array.isArray(original) || original instanceof Error ? this.#copyError(original, depth + 1) : original;
        if (redacted !== original) changed = true;
        descriptor.value = redacted;
      }
      Object.defineProperty(copy, key, descriptor);
    }
    return changed ? copy : value;
  }

  #collect(into: Set<string>, short: Set<string>, seen: Set<Redactor>): void {
    if (seen.has(this)) return;
    seen.add(this);
    for (const secret of this.#secrets) into.add(secret);
    for (const secret of this.#shortSecrets) short.add(secret);
    for (const parent of this.#parents) parent.#collect(into, short, seen);
  }

  #compiled(): { readonly pattern: RegExp | undefined; readonly short: ReadonlySet<string> } {
    if (this.#cache?.generation === generation) return this.#cache;
    const secrets = new Set<string>();
    const short = new Set<string>();
    this.#collect(secrets, short, new Set());
    // Longest first: a regex alternation takes the first alternative that matches at a position.
    const ordered = [...secrets].sort((a, b) => b.length - a.length);
    const pattern = ordered.length > 0 ? new RegExp(ordered.map(escapeRegExp).join("|"), "g") : undefined;
    this.#cache = { generation, pattern, short };
    return this.#cache;
  }
}
