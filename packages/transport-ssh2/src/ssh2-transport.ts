import { appendFileSync, mkdirSync, readFileSync, statSync } from "node:fs";
import { connect as netConnect, type Socket } from "node:net";
import { homedir, userInfo } from "node:os";
import { dirname, join } from "node:path";
import type { Duplex } from "node:stream";
import {
  AbortError,
  ConfigError,
  ConnectError,
  HostKeyError,
  ValidationError,
  formatTarget,
  type ConnectOptions,
  type Connection,
  type Target,
  type Transport,
  type TunnelError,
} from "@tunnel-sh/core";
import ssh2 from "ssh2";
import type { AnyAuthMethod, AuthenticationType, Client, ConnectConfig, ParsedKey, ServerHostKeyAlgorithm } from "ssh2";
import type SSHConfig from "ssh-config";
import {
  blobKeyType,
  fingerprint,
  knownHostsLine,
  knownKeyTypes,
  parseKnownHosts,
  verifyHostKey,
  type KnownHostsEntry,
} from "./known-hosts.js";
import { normalizeError } from "./normalize-error.js";
import { resolveOptions, type ResolvedOptions, type Ssh2TransportOptions } from "./options.js";
import { Ssh2Connection } from "./ssh2-connection.js";
import { defaultIdentityFiles, expandPath, hostSettings, loadSshConfig } from "./ssh-config-resolver.js";

/** One hop of a connection: a jump host or the final host, fully resolved. */
interface Hop {
  /** The name the caller used (an ssh_config alias, or the host itself). */
  readonly alias: string;
  /** The address connected to (ssh_config's HostName, else the alias). */
  readonly host: string;
  readonly port: number;
  readonly user: string;
  readonly identityFiles: readonly string[];
}

type AuthHandler = (methodsLeft: AuthenticationType[] | null) => AnyAuthMethod | false;

/** ssh2 1.17's default host key algorithms, most preferred first. */
const DEFAULT_HOST_KEY_ALGORITHMS: readonly ServerHostKeyAlgorithm[] = [
  "ssh-ed25519",
  "ecdsa-sha2-nistp256",
  "ecdsa-sha2-nistp384",
  "ecdsa-sha2-nistp521",
  "rsa-sha2-512",
  "rsa-sha2-256",
  "ssh-rsa",
];

function algorithmsForKeyType(keyType: string): ServerHostKeyAlgorithm[] {
  if (keyType === "ssh-rsa") return ["rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"];
  return DEFAULT_HOST_KEY_ALGORITHMS.includes(keyType as ServerHostKeyAlgorithm) ? [keyType as ServerHostKeyAlgorithm] : [];
}

/** Milliseconds between SIGTERM and SIGKILL when a spawn request's signal aborts. */
const KILL_GRACE_MS = 2000;

function validateTarget(target: Target): void {
  if (typeof target !== "object" || target === null) throw new ValidationError("target", "must be an object");
  if (typeof target.host !== "string" || target.host.trim() === "" || /\s/.test(target.host)) {
    throw new ValidationError("host", "must be a non-empty host name without spaces");
  }
  if (target.port !== undefined && (!Number.isInteger(target.port) || target.port < 1 || target.port > 65535)) {
    throw new ValidationError("port", "must be an integer from 1 to 65535");
  }
  if (target.user !== undefined && (typeof target.user !== "string" || target.user === "" || /[\s@]/.test(target.user))) {
    throw new ValidationError("user", "must be a non-empty user name");
  }
}

/**
 * `Transport` over the `ssh2` library: key, agent, password and keyboard-interactive authentication,
 * known_hosts verification, ssh_config, ProxyJump, keepalive, TCP_NODELAY, SFTP transfers.
 *
 * Every client it creates (one per hop) belongs to the connection it returns and is closed with it.
 * @example
 * const transport = new Ssh2Transport({ knownHosts: "/etc/tunnel/known_hosts", privateKey: "/etc/tunnel/id_ed25519" });
 * const connection = await transport.connect({ host: "web-1", user: "deploy" });
 */
export class Ssh2Transport implements Transport {
  readonly name = "ssh2";
  private readonly options: ResolvedOptions;
  private configCache: { version: string; config: SSHConfig | undefined } | undefined;

  /** Throws `ConfigError` for invalid options, before any I/O. */
  constructor(options: Ssh2TransportOptions = {}) {
    this.options = resolveOptions(options);
  }

  identity(target: Target): string {
    const jumps = this.resolveJumps(target, this.loadConfig());
    return jumps.map((hop) => `${hop.user}@${hop.host}:${hop.port}`).join(",");
  }

  async connect(target: Target, options: ConnectOptions = {}): Promise<Connection> {
    validateTarget(target);
    const signal = options.signal;
    if (signal?.aborted) throw new AbortError("the connect was aborted", { phase: "connect", target });
    const config = this.loadConfig();
    const final = this.resolveHop(target, config);
    const hops = [...this.resolveJumps(target, config), final];
    const knownHosts = this.options.hostKeyPolicy === "insecure-accept-any" ? [] : this.readKnownHosts();
    const resolvedTarget: Target = { host: final.host, port: final.port, user: final.user };
    // Keys are read and parsed here so a bad key is a ConfigError before any network I/O.
    const authHandlers = hops.map((hop) => this.authHandler(hop));

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
        if (index === 0) {
          const socket = netConnect({ host: hop.host, port: hop.port });
          // ssh2 leaves Nagle on: 44 ms per round trip instead of ~2.6 ms on an open connection.
          socket.setNoDelay(true);
          socket.on("error", () => {}); // reported through the client
          sock = socket;
        } else {
          const previous = clients[index - 1] as Client;
          sock = await forward(previous, hop, this.secrets());
        }
        if (signal?.aborted) throw new AbortError("the connect was aborted", { phase: "connect", target });
        const client = this.options.createClient ? this.options.createClient() : new ssh2.Client();
        clients.push(client);
        await this.handshake(client, hop, sock, knownHosts, authHandlers[index] as AuthHandler, signal);
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
      throw normalizeError(error, { phase: "connect", target: resolvedTarget, secrets: this.secrets() });
    }
    signal?.removeEventListener("abort", onAbort);
    return new Ssh2Connection({
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
      secrets: this.secrets(),
      killGraceMs: KILL_GRACE_MS,
    });
  }

  private secrets(): readonly (string | undefined)[] {
    return [this.options.password, this.options.passphrase];
  }

  private loadConfig(): SSHConfig | undefined {
    const option = this.options.sshConfig;
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

  private resolveHop(target: Target, config: SSHConfig | undefined): Hop {
    const settings = hostSettings(config, target.host);
    const host = settings.hostName ?? target.host;
    const port = target.port ?? settings.port ?? 22;
    const user = target.user ?? this.options.username ?? settings.user ?? userInfo().username;
    const tokens = { host, user, port, alias: target.host };
    return { alias: target.host, host, port, user, identityFiles: settings.identityFiles.map((file) => expandPath(file, tokens)) };
  }

  private resolveJumps(target: Target, config: SSHConfig | undefined): Hop[] {
    const jumps = this.options.proxyJump ?? hostSettings(config, target.host).proxyJump ?? [];
    // A jump host's own ssh_config (HostName, Port, User, IdentityFile) applies; its ProxyJump does not.
    return jumps.map((jump) => this.resolveHop(jump, config));
  }

  private readKnownHosts(): KnownHostsEntry[] {
    const explicit = this.options.knownHosts !== undefined;
    const files = this.options.knownHosts ?? [join(homedir(), ".ssh", "known_hosts")];
    const entries: KnownHostsEntry[] = [];
    for (const file of files) {
      let text: string;
      try {
        text = readFileSync(file, "utf8");
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        if (code === "ENOENT") continue;
        throw new ConfigError("knownHosts", `cannot read ${file}: ${code ?? String(error)}`, { cause: error });
      }
      entries.push(...parseKnownHosts(text, file));
    }
    if (explicit && entries.length === 0 && this.options.hostKeyPolicy === "strict") {
      // Not an error: every host is simply unknown. Stated here because it is the usual set-up mistake.
    }
    return entries;
  }

  private loadKeys(hop: Hop): ParsedKey[] {
    const passphrase = this.options.passphrase;
    const explicit = this.options.privateKey;
    if (explicit !== undefined) {
      let data: Buffer | string;
      let label: string;
      if (typeof explicit === "string" && !explicit.includes("-----BEGIN")) {
        label = explicit;
        try {
          data = readFileSync(explicit);
        } catch (error) {
          throw new ConfigError("privateKey", `cannot read ${explicit}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`, { cause: error });
        }
      } else {
        label = "the key given";
        data = typeof explicit === "string" ? explicit : Buffer.from(explicit);
      }
      const key = parseKey(data, passphrase);
      if (key instanceof Error) throw new ConfigError("privateKey", `cannot use ${label}: ${key.message}`);
      return [key];
    }
    const files = hop.identityFiles.length > 0 ? hop.identityFiles : defaultIdentityFiles();
    const keys: ParsedKey[] = [];
    for (const file of files) {
      let data: Buffer;
      try {
        data = readFileSync(file);
      } catch {
        continue; // OpenSSH skips identity files that do not exist
      }
      const key = parseKey(data, passphrase);
      if (!(key instanceof Error)) keys.push(key);
    }
    return keys;
  }

  private authHandler(hop: Hop): AuthHandler {
    const username = hop.user;
    const password = this.options.password;
    const agent = this.options.agent === false ? undefined : (this.options.agent ?? process.env["SSH_AUTH_SOCK"]);
    const attempts: AnyAuthMethod[] = [];
    if (agent) attempts.push({ type: "agent", username, agent });
    for (const key of this.loadKeys(hop)) attempts.push({ type: "publickey", username, key });
    if (password !== undefined) {
      let rounds = 0;
      attempts.push({
        type: "keyboard-interactive",
        username,
        prompt: (_name, _instructions, _lang, prompts, finish) => {
          // Answer the first round that asks anything with the password; a second one means it was wrong.
          if (prompts.length > 0) rounds++;
          finish(prompts.map(() => (rounds === 1 ? password : "")));
        },
      });
      attempts.push({ type: "password", username, password });
    }
    if (attempts.length === 0) attempts.push({ type: "none", username });
    return (methodsLeft) => {
      while (attempts.length > 0) {
        const attempt = attempts.shift() as AnyAuthMethod;
        const method = attempt.type === "agent" ? "publickey" : attempt.type;
        if (!methodsLeft || methodsLeft.includes(method as AuthenticationType)) return attempt;
      }
      return false;
    };
  }

  private hostKeyAlgorithms(hop: Hop, knownHosts: readonly KnownHostsEntry[]): ConnectConfig["algorithms"] {
    const algorithms = this.options.algorithms;
    if (algorithms?.serverHostKey !== undefined || this.options.hostKeyPolicy === "insecure-accept-any") return algorithms;
    // Like OpenSSH, ask first for the key types known_hosts holds for this host, so a host with several
    // keys presents one we can check.
    const preferred = knownKeyTypes(knownHosts, hop.host, hop.port).flatMap(algorithmsForKeyType);
    if (preferred.length === 0) return algorithms;
    const order = [...new Set([...preferred, ...DEFAULT_HOST_KEY_ALGORITHMS])];
    return { ...algorithms, serverHostKey: order };
  }

  private handshake(
    client: Client,
    hop: Hop,
    sock: Socket | Duplex,
    knownHosts: KnownHostsEntry[],
    authHandler: AuthHandler,
    signal: AbortSignal | undefined,
  ): Promise<void> {
    const hopTarget: Target = { host: hop.host, port: hop.port, user: hop.user };
    let hostKeyError: TunnelError | undefined;
    const policy = this.options.hostKeyPolicy;
    const knownHostsFiles = this.options.knownHosts ?? [join(homedir(), ".ssh", "known_hosts")];
    const hostVerifier = (key: Buffer, verify: (valid: boolean) => void): void => {
      if (policy === "insecure-accept-any") return verify(true);
      const verdict = verifyHostKey(knownHosts, hop.host, hop.port, key);
      const shown = `${blobKeyType(key) ?? "unknown"} ${fingerprint(key)}`;
      if (verdict.status === "trusted") return verify(true);
      if (verdict.status === "revoked") {
        hostKeyError = new HostKeyError(`the host key of ${formatTarget(hopTarget)} (${shown}) is revoked in ${verdict.entry.file}:${verdict.entry.line}`, {
          target: hopTarget,
          fingerprint: fingerprint(key),
        });
        return verify(false);
      }
      if (verdict.status === "changed") {
        const where = verdict.entries.map((entry) => `${entry.file}:${entry.line}`).join(", ");
        hostKeyError = new HostKeyError(
          `the host key of ${formatTarget(hopTarget)} has CHANGED: the server presented ${shown}, known_hosts lists other keys (${where}); refusing to connect`,
          { target: hopTarget, fingerprint: fingerprint(key) },
        );
        return verify(false);
      }
      if (policy === "accept-new") {
        const file = knownHostsFiles[0] as string;
        try {
          mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
          appendFileSync(file, `${knownHostsLine(hop.host, hop.port, key)}\n`, { mode: 0o600 });
          const added = parseKnownHosts(knownHostsLine(hop.host, hop.port, key), file);
          knownHosts.push(...added);
          return verify(true);
        } catch (error) {
          hostKeyError = new HostKeyError(`cannot record the new host key of ${formatTarget(hopTarget)} in ${file}: ${(error as Error).message}`, {
            target: hopTarget,
            fingerprint: fingerprint(key),
            cause: error,
          });
          return verify(false);
        }
      }
      hostKeyError = new HostKeyError(`the host key of ${formatTarget(hopTarget)} (${shown}) is not in known_hosts and hostKeyPolicy is "strict"`, {
        target: hopTarget,
        fingerprint: fingerprint(key),
      });
      return verify(false);
    };

    const config: ConnectConfig = {
      sock: sock as NonNullable<ConnectConfig["sock"]>,
      host: hop.host,
      port: hop.port,
      username: hop.user,
      readyTimeout: this.options.readyTimeout,
      keepaliveInterval: this.options.keepaliveInterval,
      keepaliveCountMax: this.options.keepaliveCountMax,
      hostVerifier,
      authHandler: authHandler as unknown as NonNullable<ConnectConfig["authHandler"]>,
      tryKeyboard: this.options.password !== undefined,
    };
    const algorithms = this.hostKeyAlgorithms(hop, knownHosts);
    if (algorithms) config.algorithms = algorithms;

    return new Promise<void>((resolve, reject) => {
      let settled = false;
      let firstError: unknown;
      const settle = (error?: unknown): void => {
        if (settled) return;
        settled = true;
        client.removeListener("ready", onReady);
        client.removeListener("close", onClose);
        if (error === undefined) resolve();
        else reject(error);
      };
      const onReady = (): void => settle();
      const onClose = (): void => {
        if (signal?.aborted) return settle(new AbortError("the connect was aborted", { phase: "connect", target: hopTarget }));
        settle(hostKeyError ?? firstError ?? new ConnectError(`the server closed the connection during the handshake (${formatTarget(hopTarget)})`, { target: hopTarget }));
      };
      // Stays attached for the client's life: ssh2 throws on an `error` event nobody listens to.
      // A handshake timeout emits two errors ("Timed out while waiting for handshake", then
      // "Connection lost before handshake"); only the first one counts.
      client.on("error", (error: unknown) => {
        if (settled) return;
        // ssh2 reports an unusable agent or a key that failed to sign, then goes on with the next method.
        const vendor = error as { level?: string; message?: string };
        if (vendor.level === "agent") return;
        if (vendor.level === "client-authentication" && !/authentication methods failed/i.test(vendor.message ?? "")) return;
        firstError ??= error;
        settle(hostKeyError ?? normalizeError(firstError, { phase: "connect", target: hopTarget, secrets: this.secrets() }));
      });
      client.once("ready", onReady);
      client.once("close", onClose);
      try {
        client.connect(config);
      } catch (error) {
        settle(normalizeError(error, { phase: "connect", target: hopTarget, secrets: this.secrets() }));
      }
    }).catch((error: unknown) => {
      client.destroy();
      throw error;
    });
  }
}

function parseKey(data: Buffer | string, passphrase: string | undefined): ParsedKey | Error {
  const parsed = ssh2.utils.parseKey(data, passphrase);
  const key = Array.isArray(parsed) ? (parsed[0] as ParsedKey | undefined) : parsed;
  if (!key) return new Error("no key found");
  if (key instanceof Error) return key;
  if (!key.isPrivateKey()) return new Error("not a private key");
  return key;
}

/** Open a direct-tcpip channel from a jump host to the next hop. */
function forward(jump: Client, hop: Hop, secrets: readonly (string | undefined)[]): Promise<Duplex> {
  const hopTarget: Target = { host: hop.host, port: hop.port, user: hop.user };
  return new Promise<Duplex>((resolve, reject) => {
    try {
      jump.forwardOut("127.0.0.1", 0, hop.host, hop.port, (error, stream) => {
        if (error) reject(normalizeError(error, { phase: "connect", target: hopTarget, secrets }));
        else resolve(stream);
      });
    } catch (error) {
      reject(normalizeError(error, { phase: "connect", target: hopTarget, secrets }));
    }
  });
}
