import { readFileSync } from "node:fs";
import { homedir, userInfo } from "node:os";
import { join } from "node:path";
import { ConfigError, parseProxyJump, type Target } from "@tunnel-sh/core";
import SSHConfig from "ssh-config";

/** What ssh_config says about one host alias. Absent members were not set. */
export interface HostSettings {
  readonly hostName?: string;
  readonly port?: number;
  readonly user?: string;
  readonly identityFiles: readonly string[];
  readonly certificateFiles: readonly string[];
  readonly forwardAgent?: boolean;
  readonly proxyJump?: readonly Target[];
}

/**
 * Read and parse an ssh_config file. A missing file is an empty config; an unreadable or
 * unparsable one is a `ConfigError`.
 */
export function loadSshConfig(path: string, explicit: boolean): SSHConfig | undefined {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "ENOENT" && !explicit) return undefined;
    throw new ConfigError("configFile", `cannot read ${path}: ${code ?? String(error)}`, { cause: error });
  }
  try {
    return SSHConfig.parse(text);
  } catch (error) {
    throw new ConfigError("configFile", `cannot parse ${path}: ${(error as Error).message}`, { cause: error });
  }
}

function first(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

function all(value: string | string[] | undefined): string[] {
  if (value === undefined) return [];
  return Array.isArray(value) ? value : [value];
}

/** Expand `~` and the `%` tokens OpenSSH allows in IdentityFile. */
export function expandPath(path: string, tokens: { host: string; user: string; port: number; alias: string }): string {
  const home = homedir();
  const expanded = path.replace(/%([%dhnpru])/g, (_match, token: string) => {
    switch (token) {
      case "%":
        return "%";
      case "d":
        return home;
      case "h":
        return tokens.host;
      case "n":
        return tokens.alias;
      case "p":
        return String(tokens.port);
      case "r":
        return tokens.user;
      default:
        return userInfo().username;
    }
  });
  if (expanded === "~") return home;
  if (expanded.startsWith("~/")) return join(home, expanded.slice(2));
  return expanded;
}

/**
 * The settings ssh_config gives `alias` (first value wins, as in OpenSSH). `Match exec` blocks are not
 * evaluated: reading a config must never run a command.
 */
export function hostSettings(config: SSHConfig | undefined, alias: string, user?: string): HostSettings {
  if (!config) return { identityFiles: [], certificateFiles: [] };
  const computed = config.compute(user ? { Host: alias, User: user } : { Host: alias }, { ignoreCase: true, matchExec: false });
  const hostName = first(computed["hostname"]);
  const portText = first(computed["port"]);
  let port: number | undefined;
  if (portText !== undefined) {
    port = Number(portText);
    if (!Number.isInteger(port) || port < 1 || port > 65535) {
      throw new ConfigError("configFile", `invalid Port "${portText}" for host ${alias}`);
    }
  }
  const configUser = first(computed["user"]);
  const jump = first(computed["proxyjump"]);
  const forwardAgent = first(computed["forwardagent"])?.toLowerCase();
  return {
    ...(hostName !== undefined ? { hostName: hostName.replace(/%h/g, alias) } : {}),
    ...(port !== undefined ? { port } : {}),
    ...(configUser !== undefined ? { user: configUser } : {}),
    identityFiles: all(computed["identityfile"]).filter((file) => file.toLowerCase() !== "none"),
    certificateFiles: all(computed["certificatefile"]).filter((file) => file.toLowerCase() !== "none"),
    ...(forwardAgent !== undefined ? { forwardAgent: forwardAgent !== "no" } : {}),
    ...(jump !== undefined ? { proxyJump: parseProxyJump(jump, "configFile.ProxyJump") } : {}),
  };
}

/** The identity files OpenSSH tries when nothing names one. */
export function defaultIdentityFiles(): string[] {
  const dir = join(homedir(), ".ssh");
  return ["id_ed25519", "id_ecdsa", "id_rsa"].map((name) => join(dir, name));
}
