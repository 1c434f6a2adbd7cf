import { statSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import type { Duplex } from "node:stream";
import type { Socket } from "node:net";
import { AbortError, TimeoutError, type ConnectOptions, type Connection, type Target, type Transport } from "@tunnel-sh/core";
import { deadlineSignal, validateTarget } from "@tunnel-sh/core/internal";
import type { Client } from "ssh2";
import type SSHConfig from "ssh-config";
import { resolveHop, resolveJumps, type Hop } from "./hop.js";
import { agentForwarding as forwardedAgent, explainCertificates, hopAuthentication, type HopAuth } from "./hop-authentication.js";
import { firstHopSocket, forward, handshake } from "./hop-handshake.js";
import { KnownHostsCache } from "./host-key-verification.js";
import { normalizeError } from "./normalize-error.js";
import { resolveOptions, secretsOf, type ResolvedOptions, type Ssh2TransportOptions } from "./options.js";
import { probeSessionGroup } from "./session-group-probe.js";
import { Ssh2Connection } from "./ssh2-connection.js";
import { loadSsh2 } from "./ssh2-certificates.js";
import { loadSshConfig } from "./ssh-config-resolver.js";

/**
 * `Transport` over the `ssh2` library: key, agent, password and keyboard-interactive authentication,
 * known_hosts verification, ssh_config, ProxyJump, keepalive, TCP_NODELAY, SFTP transfers.
 *
 * Every client it creates (one per hop) belongs to the connection it returns and is closed with it.
 * @example
 * const transport = new Ssh2Transport({ knownHostsFile: "/etc/tunnel/known_hosts", identityFile: "/etc/tunnel/id_ed25519" });
 * const connection = await transport.connect({ host: "web-1", user: "deploy" });
 */
export class Ssh2Transport implements Transport {
  readonly name = "ssh2";
  private readonly options: ResolvedOptions;
  private configCache: { version: string; config: SSHConfig | undefined } | undefined;
  private readonly knownHostsCache = new KnownHostsCache();

  /** Throws `ConfigError` for invalid options, before any I/O. */
  constructor(options: Ssh2TransportOptions = {}) {
    this.options = resolveOptions(options);
  }

  identity(target: Target): string {
    const jumps = resolveJumps(this.options, target, this.loadConfig());
    return jumps.map((hop) => `${hop.user}@${hop.host}:${hop.port}`).join(",");
  }

  async connect(target: Target, options: ConnectOptions = {}): Promise<Connection> {
    validateTarget(target);
    const signal = options.signal;
    if (signal?.aborted) throw new AbortError("the connect was aborted", { phase: "connect", target });
    const config = this.loadConfig();
    const final = resolveHop(this.options, target, config);
    const hops = [...resolveJumps(this.options, target, config), final];
    const knownHosts = this.options.hostKeyChecking === "insecure-accept-any" ? [] : this.knownHostsCache.read(this.options);
    const resolvedTarget: Target = { host: final.host, port: final.port, user: final.user };
    const readyTimeout = this.options.readyTimeout;
    // Keyboard-interactive callbacks stop asking when the connect is aborted or runs out of time. Its timer goes
    // with the handshakes: the connect's later steps keep their own bounds.
    const prompts = deadlineSignal({
      signal,
      timeoutMs: readyTimeout,
      abortReason: () => new AbortError("the connect was aborted", { phase: "connect", target }),
      timeoutReason: () =>
        new TimeoutError(`the connect took longer than readyTimeout (${readyTimeout} ms)`, { timeoutMs: readyTimeout, phase: "connect", target }),
    });
    // readyTimeout bounds the whole connect, every hop included, as the shared option says.
    const deadline = prompts.deadline;
    let authentications: HopAuth[];
    let agentForwarding: string | undefined;
    try {
      // Keys are read and parsed here so a bad key is a ConfigError before any network I/O.
      authentications = hops.map((hop) => hopAuthentication(this.options, hop, prompts.signal));
      agentForwarding = forwardedAgent(this.options, final);
    } catch (error) {
      prompts.dispose();
      throw error;
    }

    const clients: Client[] = [];
    let sock: Socket | Duplex | undefined;
    const abortAll = (): void => {
      for (const client of clients) client.destroy();
      if (sock && "destroy" in sock) sock.destroy();
    };
    const onAbort = (): void => abortAll();
    signal?.addEventListener("abort", onAbort, { once: true });
    try {
      for (let index = 0; index < hops.length; index++) {
        const hop = hops[index] as Hop;
        sock = index === 0 ? firstHopSocket(hop, this.options.connectTimeout) : await forward(clients[index - 1] as Client, hop, secretsOf(this.options));
        if (signal?.aborted) throw new AbortError("the connect was aborted", { phase: "connect", target });
        const client = this.options.createClient ? this.options.createClient() : new (loadSsh2().Client)();
        clients.push(client);
        const authentication = authentications[index] as HopAuth;
        const forwarding = index === hops.length - 1 ? agentForwarding : undefined;
        try {
          await handshake(this.options, client, hop, sock, knownHosts, authentication.handler, Math.max(1, deadline - Date.now()), signal, forwarding);
        } catch (error) {
          throw explainCertificates(error, hop, authentication.certificates);
        }
        options.span?.addEvent("tunnel.hop.ready", {
          "server.address": hop.host,
          "server.port": hop.port,
          "tunnel.hop.index": index,
          "tunnel.hop.jump": index < hops.length - 1,
        });
      }
    } catch (error) {
      signal?.removeEventListener("abort", onAbort);
      abortAll();
      if (signal?.aborted) throw new AbortError("the connect was aborted", { phase: "connect", target, cause: error });
      throw normalizeError(error, { phase: "connect", target: resolvedTarget, secrets: secretsOf(this.options) });
    } finally {
      prompts.dispose();
    }
    signal?.removeEventListener("abort", onAbort);
    const connection = new Ssh2Connection({
      client: clients[clients.length - 1] as Client,
      jumpClients: clients.slice(0, -1),
      target: resolvedTarget,
      maxChannels: this.options.maxChannels,
      tuning: {
        concurrency: this.options.concurrency,
        chunkSize: this.options.chunkSize,
        progressIntervalMs: this.options.progressIntervalMs,
        sftpIdleMs: this.options.sftpIdleMs,
      },
      secrets: secretsOf(this.options),
      killGraceMs: this.options.killGraceMs,
    });
    if (connection.sessionGroupKnown) return connection;
    const guess = connection.signalsOnlySessionPid;
    try {
      // The probe itself must run as the server starts it, not in a group of its own.
      connection.signalsOnlySessionPid = false;
      const leadsGroup = await probeSessionGroup(connection, { timeoutMs: Math.max(1, deadline - Date.now()), signal });
      connection.signalsOnlySessionPid = leadsGroup === undefined ? guess : !leadsGroup;
      connection.holdClosedSlot();
    } catch (error) {
      await connection.close();
      throw error;
    }
    return connection;
  }

  private loadConfig(): SSHConfig | undefined {
    const option = this.options.configFile;
    if (option === false) return undefined;
    const path = option ?? join(homedir(), ".ssh", "config");
    // The pool asks for identity() on every acquire: parse again only when the file changed.
    let version: string;
    try {
      const stats = statSync(path);
      version = `${stats.mtimeMs}:${stats.size}`;
    } catch {
      version = "absent";
    }
    if (this.configCache?.version !== version) {
      this.configCache = { version, config: loadSshConfig(path, option !== undefined) };
    }
    return this.configCache.config;
  }
}
