/**
 * Host specifications as users type them: `host`, `user@host`, `host:2222`, `user@[::1]:2222`, `::1`, or an
 * ssh_config alias (passed on as the host, for the transport to resolve).
 */
import type { Target } from "@tunnel-sh/core";
import { UsageError } from "./usage-error.js";

/** One host the CLI runs on: the name shown in output, where to connect, and variables for its environment. */
export interface HostEntry {
  /** Shown as the line prefix and in the summary: the inventory name, or the `-H` spec as typed. */
  readonly name: string;
  readonly target: Target;
  /** Environment variables for commands and scripts on this host (inventory `vars`). */
  readonly vars: Readonly<Record<string, string>>;
}

const USER_PATTERN = /^[A-Za-z0-9._][A-Za-z0-9._-]*\$?$/;
const HOST_PATTERN = /^[A-Za-z0-9._%-]+$/;
const IPV6_PATTERN = /^[0-9A-Fa-f:.]+(%[A-Za-z0-9._-]+)?$/;

/** A port number 1–65535 from text; `field` names the input in the error. */
export function parsePort(text: string, field: string): number {
  if (!/^\d+$/.test(text)) throw new UsageError(`${field}: "${text}" is not a port number`);
  const port = Number(text);
  if (port < 1 || port > 65_535) throw new UsageError(`${field}: port ${port} is out of range 1-65535`);
  return port;
}

/**
 * Parse `[user@]host[:port]`. IPv6 addresses with a port go in brackets (`[::1]:2222`); a bare IPv6 address
 * (two or more colons) has no port.
 * @example parseHostSpec("deploy@web-1:2222") // { host: "web-1", user: "deploy", port: 2222 }
 */
export function parseHostSpec(spec: string): Target {
  const text = spec.trim();
  if (text === "") throw new UsageError("empty host in the host list");
  let rest = text;
  let user: string | undefined;
  const at = rest.lastIndexOf("@");
  if (at >= 0) {
    user = rest.slice(0, at);
    rest = rest.slice(at + 1);
    if (!USER_PATTERN.test(user)) throw new UsageError(`host "${text}": "${user}" is not a valid user name`);
  }
  let host: string;
  let port: number | undefined;
  const bracketed = /^\[([^\]]*)\](?::(.*))?$/.exec(rest);
  if (bracketed) {
    host = bracketed[1] ?? "";
    if (!IPV6_PATTERN.test(host) || !host.includes(":")) throw new UsageError(`host "${text}": "[${host}]" is not an IPv6 address`);
    if (bracketed[2] !== undefined) port = parsePort(bracketed[2], `host "${text}"`);
  } else if ((rest.match(/:/g) ?? []).length >= 2) {
    host = rest;
    if (!IPV6_PATTERN.test(host)) throw new UsageError(`host "${text}": "${host}" is not an IPv6 address`);
  } else {
    const colon = rest.indexOf(":");
    host = colon >= 0 ? rest.slice(0, colon) : rest;
    if (colon >= 0) port = parsePort(rest.slice(colon + 1), `host "${text}"`);
    if (!HOST_PATTERN.test(host) || host.startsWith("-")) throw new UsageError(`host "${text}": "${host}" is not a host name, address or alias`);
  }
  if (host === "") throw new UsageError(`host "${text}": the host is missing`);
  return { host, ...(port !== undefined ? { port } : {}), ...(user !== undefined ? { user } : {}) };
}

/**
 * Parse `-H` values: each may hold several specs separated by commas. Duplicates (same spec) are kept once.
 * @example parseHostList(["web-1,deploy@web-2:2222", "[::1]:22"])
 */
export function parseHostList(values: readonly string[]): HostEntry[] {
  const entries: HostEntry[] = [];
  const seen = new Set<string>();
  for (const value of values) {
    for (const part of value.split(",")) {
      const name = part.trim();
      if (name === "") continue;
      if (seen.has(name)) continue;
      seen.add(name);
      entries.push({ name, target: parseHostSpec(name), vars: {} });
    }
  }
  return entries;
}

/** Fill in `-l` / `-p` for hosts that name no user / port of their own. */
export function withDefaults(entries: readonly HostEntry[], defaults: { readonly user?: string | undefined; readonly port?: number | undefined }): HostEntry[] {
  return entries.map((entry) => ({
    ...entry,
    target: {
      ...entry.target,
      ...(entry.target.user === undefined && defaults.user !== undefined ? { user: defaults.user } : {}),
      ...(entry.target.port === undefined && defaults.port !== undefined ? { port: defaults.port } : {}),
    },
  }));
}

/** `user@host:port` for display, brackets around IPv6; parts the transport decides are left out. */
export function describeTarget(target: Target): string {
  const host = target.host.includes(":") ? `[${target.host}]` : target.host;
  return `${target.user !== undefined ? `${target.user}@` : ""}${host}${target.port !== undefined ? `:${target.port}` : ""}`;
}
