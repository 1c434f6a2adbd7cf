import { constants } from "node:fs";
import { access } from "node:fs/promises";
import { AbortError, ConfigError, type Connection, type ConnectOptions, type Target, type Transport } from "@tunnel-sh/core";
import { OpenSshConnection } from "./connection.js";
import { Master } from "./master.js";
import { proxyJumpArg, resolveOptions, validateTarget, type OpenSshTransportOptions, type ResolvedOptions } from "./options.js";

/**
 * A tunnel `Transport` over the system OpenSSH client: one ControlMaster per connection, every exec and transfer
 * through its control socket, the user's ssh_config, agent, ProxyJump and certificates honoured.
 * @example
 * const transport = new OpenSshTransport({ identityFile: "/home/deploy/.ssh/id_ed25519", knownHostsFile: "./known_hosts" });
 * const connection = await transport.connect({ host: "web-1", user: "deploy" });
 */
export class OpenSshTransport implements Transport {
  readonly name = "openssh";
  private readonly options: ResolvedOptions;

  /** Throws `ConfigError` for invalid options, before any I/O. */
  constructor(options: OpenSshTransportOptions = {}) {
    this.options = resolveOptions(options);
  }

  async connect(target: Target, options: ConnectOptions = {}): Promise<Connection> {
    validateTarget(target);
    if (options.signal?.aborted) throw new AbortError("the connect was aborted", { phase: "connect", target });
    // ssh only warns about an identity file it cannot read and goes on without it; say so before connecting.
    for (const file of this.options.identityFiles) {
      try {
        await access(file, constants.R_OK);
      } catch (error) {
        throw new ConfigError("identityFile", `cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`, { cause: error, target });
      }
    }
    const master = await Master.start(this.options, target, options.signal);
    return new OpenSshConnection(target, master, this.options);
  }

  /** Config file and identities change who we are on the server: the pool keeps such connections apart. */
  identity(_target: Target): string {
    const parts: string[] = [];
    if (this.options.configFile) parts.push(`F=${this.options.configFile}`);
    if (this.options.identityFiles.length > 0) parts.push(`i=${this.options.identityFiles.join(",")}`);
    if (this.options.proxyJump !== undefined) parts.push(`J=${proxyJumpArg(this.options.proxyJump) || "none"}`);
    for (const [key, value] of this.options.extraOptions) {
      if (/^(proxyjump|hostname|user|port|hostkeyalias|certificatefile)$/i.test(key)) parts.push(`${key}=${value}`);
    }
    return parts.join(";");
  }
}
