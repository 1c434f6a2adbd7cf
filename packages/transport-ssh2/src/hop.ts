/** The hops of a connection — jump hosts, then the final host — resolved from the target, the options and ssh_config. */
import { userInfo } from "node:os";
import type { Target } from "@tunnel-sh/core";
import type SSHConfig from "ssh-config";
import type { ResolvedOptions } from "./options.js";
import { expandPath, hostSettings } from "./ssh-config-resolver.js";

/** One hop of a connection: a jump host or the final host, fully resolved. */
export interface Hop {
  /** The name the caller used (an ssh_config alias, or the host itself). */
  readonly alias: string;
  /** The address connected to (ssh_config's HostName, else the alias). */
  readonly host: string;
  readonly port: number;
  readonly user: string;
  readonly identityFiles: readonly string[];
  /** ssh_config's CertificateFile for this host, tokens expanded. */
  readonly certificateFiles: readonly string[];
  /** ssh_config's ForwardAgent for this host, when set. */
  readonly forwardAgent: boolean | undefined;
}

/** The target's own values first, then the transport's options, then ssh_config. */
export function resolveHop(options: ResolvedOptions, target: Target, config: SSHConfig | undefined): Hop {
  const settings = hostSettings(config, target.host);
  const host = settings.hostName ?? target.host;
  const port = target.port ?? settings.port ?? 22;
  const user = target.user ?? options.user ?? settings.user ?? userInfo().username;
  const tokens = { host, user, port, alias: target.host };
  return {
    alias: target.host,
    host,
    port,
    user,
    identityFiles: settings.identityFiles.map((file) => expandPath(file, tokens)),
    certificateFiles: settings.certificateFiles.map((file) => expandPath(file, tokens)),
    forwardAgent: settings.forwardAgent,
  };
}

/** The jump hosts on the way to `target`, first hop first (the `proxyJump` option, else ssh_config's ProxyJump). */
export function resolveJumps(options: ResolvedOptions, target: Target, config: SSHConfig | undefined): Hop[] {
  const jumps = options.proxyJump ?? hostSettings(config, target.host).proxyJump ?? [];
  // A jump host's own ssh_config (HostName, Port, User, IdentityFile) applies; its ProxyJump does not.
  return jumps.map((jump) => resolveHop(options, jump, config));
}
