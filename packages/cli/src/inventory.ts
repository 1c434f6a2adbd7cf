/**
 * Inventory files (YAML or JSON): named hosts with their address, user, port and variables, and groups of them.
 *
 * ```yaml
 * user: deploy              # default user for every host (optional)
 * port: 22                  # default port (optional)
 * vars: { LC_ALL: C }       # variables for every host (optional)
 * hosts:
 *   web-1: { host: 10.0.0.11, port: 2222, vars: { ROLE: web } }
 *   web-2: ops@10.0.0.12    # shorthand: [user@]host[:port]
 *   bastion-alias: {}       # no host: the name itself, resolved through ssh_config
 * groups:
 *   web: [web-1, web-2]
 *   db: { hosts: [db-1], vars: { ROLE: db } }
 *   prod: [web, db]         # a group may list groups
 * ```
 *
 * Variables become environment variables of commands and scripts. Precedence, lowest first: top-level `vars`,
 * group `vars` (in the order the groups appear in the file), the host's `vars`, then `--env`.
 */
import { readFile } from "node:fs/promises";
import { extname } from "node:path";
import type { Target } from "@tunnel-sh/core";
import { parseHostSpec, type HostEntry } from "./hosts.js";
import { UsageError } from "./usage-error.js";

export interface Inventory {
  /** Every host, in file order, with its variables already merged (top-level, groups, host). */
  readonly hosts: readonly HostEntry[];
  /** Group name → host names, nested groups expanded, in file order. */
  readonly groups: ReadonlyMap<string, readonly string[]>;
}

export interface HostSelection {
  /** Group names (`-g`). */
  readonly groups?: readonly string[];
  /** Host name patterns (`-H` with an inventory); `*` and `?` are wildcards. */
  readonly patterns?: readonly string[];
}

export const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const NAME = /^[A-Za-z0-9_.:@[\]%-]+$/;

type Plain = Record<string, unknown>;

function isObject(value: unknown): value is Plain {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function fail(source: string, field: string, message: string): never {
  throw new UsageError(`inventory ${source}: ${field}: ${message}`);
}

function parseVars(source: string, field: string, value: unknown): Record<string, string> {
  if (value === undefined || value === null) return {};
  if (!isObject(value)) fail(source, field, "must be a mapping of NAME: value");
  const vars: Record<string, string> = {};
  for (const [name, raw] of Object.entries(value)) {
    if (!ENV_NAME.test(name)) fail(source, `${field}.${name}`, "is not a valid environment variable name");
    if (typeof raw === "string" || typeof raw === "number" || typeof raw === "boolean") vars[name] = String(raw);
    else fail(source, `${field}.${name}`, "must be a string, number or boolean");
  }
  return vars;
}

function parseUser(source: string, field: string, value: unknown): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== "string" || !/^[A-Za-z0-9._][A-Za-z0-9._-]*\$?$/.test(value)) fail(source, field, "must be a user name");
  return value;
}

function parsePortValue(source: string, field: string, value: unknown): number | undefined {
  if (value === undefined || value === null) return undefined;
  const port = typeof value === "string" && /^\d+$/.test(value) ? Number(value) : value;
  if (typeof port !== "number" || !Number.isInteger(port) || port < 1 || port > 65_535) fail(source, field, "must be a port number 1-65535");
  return port;
}

function specTarget(source: string, field: string, spec: string): Target {
  try {
    return parseHostSpec(spec);
  } catch (error) {
    return fail(source, field, error instanceof Error ? error.message : String(error));
  }
}

interface RawHost {
  readonly name: string;
  readonly target: Target;
  readonly vars: Record<string, string>;
}

function parseHost(source: string, name: string, value: unknown): RawHost {
  const field = `hosts.${name}`;
  if (!NAME.test(name)) fail(source, field, "host names may hold letters, digits and . _ - : @ [ ] %");
  if (value === undefined || value === null) return { name, target: specTarget(source, field, name), vars: {} };
  if (typeof value === "string") return { name, target: specTarget(source, field, value), vars: {} };
  if (!isObject(value)) fail(source, field, "must be a mapping (host, user, port, vars) or a [user@]host[:port] string");
  for (const key of Object.keys(value)) {
    if (!["host", "user", "port", "vars"].includes(key)) fail(source, `${field}.${key}`, "is not a host setting (host, user, port, vars)");
  }
  const address = value.host ?? name;
  if (typeof address !== "string" || address === "") fail(source, `${field}.host`, "must be a host name or address");
  const base = specTarget(source, `${field}.host`, address);
  const user = parseUser(source, `${field}.user`, value.user) ?? base.user;
  const port = parsePortValue(source, `${field}.port`, value.port) ?? base.port;
  return {
    name,
    target: { host: base.host, ...(user !== undefined ? { user } : {}), ...(port !== undefined ? { port } : {}) },
    vars: parseVars(source, `${field}.vars`, value.vars),
  };
}

function parseHosts(source: string, value: unknown): RawHost[] {
  if (value === undefined || value === null) return [];
  if (Array.isArray(value)) {
    return value.map((item, index) => {
      if (typeof item !== "string") fail(source, `hosts[${index}]`, "must be a [user@]host[:port] string");
      return { name: item, target: specTarget(source, `hosts[${index}]`, item), vars: {} };
    });
  }
  if (!isObject(value)) fail(source, "hosts", "must be a mapping of name: settings, or a list");
  return Object.entries(value).map(([name, settings]) => parseHost(source, name, settings));
}

interface RawGroup {
  readonly members: readonly string[];
  readonly vars: Record<string, string>;
}

function parseGroups(source: string, value: unknown): Map<string, RawGroup> {
  const groups = new Map<string, RawGroup>();
  if (value === undefined || value === null) return groups;
  if (!isObject(value)) fail(source, "groups", "must be a mapping of group: [members]");
  for (const [name, raw] of Object.entries(value)) {
    const field = `groups.${name}`;
    let members: unknown = raw;
    let vars: Record<string, string> = {};
    if (isObject(raw)) {
      for (const key of Object.keys(raw)) {
        if (!["hosts", "vars"].includes(key)) fail(source, `${field}.${key}`, "is not a group setting (hosts, vars)");
      }
      members = raw.hosts ?? [];
      vars = parseVars(source, `${field}.vars`, raw.vars);
    }
    if (!Array.isArray(members) || members.some((member) => typeof member !== "string")) {
      fail(source, field, "must list host or group names");
    }
    groups.set(name, { members: members as string[], vars });
  }
  return groups;
}

/**
 * Parse inventory text. `source` names the file in error messages; `format` defaults to YAML (which reads JSON too).
 * Rejects with a `UsageError` naming the field at fault.
 */
export async function parseInventory(text: string, source = "inventory", format: "yaml" | "json" = "yaml"): Promise<Inventory> {
  // The YAML parser loads with the first YAML inventory, not with every `tunnel` start.
  const parseYaml = format === "json" ? undefined : (await import("yaml")).parse;
  let document: unknown;
  try {
    document = parseYaml === undefined ? JSON.parse(text) : parseYaml(text);
  } catch (error) {
    fail(source, "syntax", error instanceof Error ? (error.message.split("\n")[0] ?? "") : String(error));
  }
  if (document === null || document === undefined) document = {};
  if (!isObject(document)) fail(source, "document", "must be a mapping with hosts (and optionally groups, vars, user, port)");
  for (const key of Object.keys(document)) {
    if (!["hosts", "groups", "vars", "user", "port"].includes(key)) fail(source, key, "is not an inventory section (hosts, groups, vars, user, port)");
  }
  const defaultUser = parseUser(source, "user", document.user);
  const defaultPort = parsePortValue(source, "port", document.port);
  const globalVars = parseVars(source, "vars", document.vars);
  const rawHosts = parseHosts(source, document.hosts);
  const byName = new Map<string, RawHost>();
  for (const host of rawHosts) {
    if (byName.has(host.name)) fail(source, `hosts.${host.name}`, "is listed twice");
    byName.set(host.name, host);
  }
  const rawGroups = parseGroups(source, document.groups);
  for (const name of rawGroups.keys()) {
    if (byName.has(name)) fail(source, `groups.${name}`, "has the same name as a host");
  }
  const groups = new Map<string, readonly string[]>();
  const expand = (name: string, trail: readonly string[]): string[] => {
    const known = groups.get(name);
    if (known) return [...known];
    if (trail.includes(name)) fail(source, `groups.${name}`, `contains itself (${[...trail, name].join(" → ")})`);
    const group = rawGroups.get(name);
    if (!group) return [];
    const out: string[] = [];
    for (const member of group.members) {
      const names = rawGroups.has(member)
        ? expand(member, [...trail, name])
        : byName.has(member)
          ? [member]
          : fail(source, `groups.${name}`, `"${member}" is neither a host nor a group`);
      for (const host of names) if (!out.includes(host)) out.push(host);
    }
    groups.set(name, out);
    return out;
  };
  for (const name of rawGroups.keys()) expand(name, []);
  const hosts = rawHosts.map((host): HostEntry => {
    const vars: Record<string, string> = { ...globalVars };
    for (const [name, group] of rawGroups) {
      if (groups.get(name)?.includes(host.name)) Object.assign(vars, group.vars);
    }
    Object.assign(vars, host.vars);
    const user = host.target.user ?? defaultUser;
    const port = host.target.port ?? defaultPort;
    return {
      name: host.name,
      target: { host: host.target.host, ...(user !== undefined ? { user } : {}), ...(port !== undefined ? { port } : {}) },
      vars,
    };
  });
  return { hosts, groups };
}

/** Read and parse an inventory file; `.json` files are parsed as JSON, anything else as YAML. */
export async function loadInventory(path: string): Promise<Inventory> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new UsageError(`inventory ${path}: cannot read it (${code ?? (error instanceof Error ? error.message : String(error))})`);
  }
  return parseInventory(text, path, extname(path).toLowerCase() === ".json" ? "json" : "yaml");
}

function globToRegExp(pattern: string): RegExp {
  const body = pattern
    .replace(/[.+^${}()|[\]\\]/g, "\\$&")
    .replace(/\*/g, ".*")
    .replace(/\?/g, ".");
  return new RegExp(`^${body}$`);
}

/**
 * The hosts a selection names, in inventory order: members of any `groups`, plus hosts whose name matches any
 * pattern. No selection means every host. An unknown group or a pattern that matches nothing is a `UsageError`.
 */
export function selectHosts(inventory: Inventory, selection: HostSelection = {}): HostEntry[] {
  const groups = selection.groups ?? [];
  const patterns = selection.patterns ?? [];
  if (groups.length === 0 && patterns.length === 0) return [...inventory.hosts];
  const chosen = new Set<string>();
  for (const group of groups) {
    const members = inventory.groups.get(group);
    if (!members) {
      const known = [...inventory.groups.keys()];
      throw new UsageError(`no group "${group}" in the inventory${known.length > 0 ? ` (groups: ${known.join(", ")})` : ""}`);
    }
    for (const member of members) chosen.add(member);
  }
  for (const pattern of patterns) {
    const matcher = globToRegExp(pattern);
    const matches = inventory.hosts.filter((host) => matcher.test(host.name));
    if (matches.length === 0) throw new UsageError(`no host in the inventory matches "${pattern}"`);
    for (const host of matches) chosen.add(host.name);
  }
  return inventory.hosts.filter((host) => chosen.has(host.name));
}
