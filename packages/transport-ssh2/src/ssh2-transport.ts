import { appendFileSync, mkdirSync, readFileSync, statSync } from "node:fs";
import { connect as netConnect, type Socket } from "node:net";
import { homedir, userInfo } from "node:os";
import { dirname, join } from "node:path";
import type { Duplex } from "node:stream";
import {
  AbortError,
  AuthenticationError,
  ConfigError,
  ConnectError,
  HostKeyError,
  TimeoutError,
  formatTarget,
  hasCode,
  type ConnectOptions,
  type Connection,
  type KeyboardInteractiveHandler,
  type Target,
  type Transport,
  type TunnelError,
} from "@tunnel-sh/core";
import { deadlineSignal, parseSshCertificate, sshCertificateProblem, validateTarget, type SshCertificate } from "@tunnel-sh/core/internal";
import type { AnyAuthMethod, AuthenticationType, Client, ConnectConfig, ParsedKey, ServerHostKeyAlgorithm } from "ssh2";
import type SSHConfig from "ssh-config";
import {
  blobKeyType,
  certificateAuthorityFor,
  fingerprint,
  knownHostsLine,
  knownKeyTypes,
  parseKnownHosts,
  verifyHostCertificate,
  verifyHostKey,
  type KnownHostsEntry,
} from "./known-hosts.js";
import { normalizeError } from "./normalize-error.js";
import { resolveOptions, type ResolvedOptions, type Ssh2TransportOptions } from "./options.js";
import { probeSessionGroup } from "./session-group-probe.js";
import { Ssh2Connection } from "./ssh2-connection.js";
import {
  HOST_CERTIFICATE_KEY_ALGORITHMS,
  certificateAgent,
  certificateKey,
  hostCertificateSupport,
  installCertificateSupport,
  loadSsh2,
} from "./ssh2-certificates.js";
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
  /** ssh_config's CertificateFile for this host, tokens expanded. */
  readonly certificateFiles: readonly string[];
  /** ssh_config's ForwardAgent for this host, when set. */
  readonly forwardAgent: boolean | undefined;
}

/** How one hop authenticates: ssh2's handler, and the certificates it offers (to explain a refusal). */
interface HopAuth {
  readonly handler: AuthHandler;
  readonly certificates: readonly SshCertificate[];
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
    const knownHosts = this.options.hostKeyChecking === "insecure-accept-any" ? [] : this.readKnownHosts();
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
      authentications = hops.map((hop) => this.authentication(hop, prompts.signal));
      agentForwarding = this.agentForwarding(final);
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
        if (index === 0) {
          const socket = netConnect({ host: hop.host, port: hop.port });
          // ssh2 leaves Nagle on: 44 ms per round trip instead of ~2.6 ms on an open connection.
          socket.setNoDelay(true);
          socket.on("error", () => {}); // reported through the client
          limitTcpConnect(socket, this.options.connectTimeout);
          sock = socket;
        } else {
          const previous = clients[index - 1] as Client;
          sock = await forward(previous, hop, this.secrets());
        }
        if (signal?.aborted) throw new AbortError("the connect was aborted", { phase: "connect", target });
        const client = this.options.createClient ? this.options.createClient() : new (loadSsh2().Client)();
        clients.push(client);
        const authentication = authentications[index] as HopAuth;
        const forwarding = index === hops.length - 1 ? agentForwarding : undefined;
        try {
          await this.handshake(client, hop, sock, knownHosts, authentication.handler, Math.max(1, deadline - Date.now()), signal, forwarding);
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
      throw normalizeError(error, { phase: "connect", target: resolvedTarget, secrets: this.secrets() });
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
      secrets: this.secrets(),
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

  private secrets(): readonly (string | undefined)[] {
    return [this.options.password, this.options.passphrase];
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

  private resolveHop(target: Target, config: SSHConfig | undefined): Hop {
    const settings = hostSettings(config, target.host);
    const host = settings.hostName ?? target.host;
    const port = target.port ?? settings.port ?? 22;
    const user = target.user ?? this.options.user ?? settings.user ?? userInfo().username;
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

  private resolveJumps(target: Target, config: SSHConfig | undefined): Hop[] {
    const jumps = this.options.proxyJump ?? hostSettings(config, target.host).proxyJump ?? [];
    // A jump host's own ssh_config (HostName, Port, User, IdentityFile) applies; its ProxyJump does not.
    return jumps.map((jump) => this.resolveHop(jump, config));
  }

  private readKnownHosts(): KnownHostsEntry[] {
    const files = this.knownHostsFiles();
    const entries: KnownHostsEntry[] = [];
    for (const file of files) {
      let text: string;
      try {
        text = readFileSync(file, "utf8");
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        if (code === "ENOENT") continue;
        throw new ConfigError("knownHostsFile", `cannot read ${file}: ${code ?? String(error)}`, { cause: error });
      }
      entries.push(...parseKnownHosts(text, file));
    }
    return entries;
  }

  private knownHostsFiles(): readonly string[] {
    return this.options.knownHostsFiles.length > 0 ? this.options.knownHostsFiles : [join(homedir(), ".ssh", "known_hosts")];
  }

  private loadKeys(hop: Hop): { keys: ParsedKey[]; certificates: SshCertificate[] } {
    const passphrase = this.options.passphrase;
    const keys: ParsedKey[] = [];
    const inMemory = this.options.privateKey;
    if (inMemory !== undefined) {
      const key = parseKey(typeof inMemory === "string" ? inMemory : Buffer.from(inMemory), passphrase);
      if (key instanceof Error) throw new ConfigError("privateKey", `cannot use the key given: ${key.message}`);
      keys.push(key);
    }
    const files: string[] = [];
    for (const file of this.options.identityFiles) {
      let data: Buffer;
      try {
        data = readFileSync(file);
      } catch (error) {
        throw new ConfigError("identityFile", `cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`, { cause: error });
      }
      const key = parseKey(data, passphrase);
      if (key instanceof Error) throw new ConfigError("identityFile", `cannot use ${file}: ${key.message}`);
      keys.push(key);
      files.push(file);
    }
    if (inMemory === undefined && this.options.identityFiles.length === 0) {
      for (const file of hop.identityFiles.length > 0 ? hop.identityFiles : defaultIdentityFiles()) {
        let data: Buffer;
        try {
          data = readFileSync(file);
        } catch {
          continue; // OpenSSH skips identity files that do not exist
        }
        const key = parseKey(data, passphrase);
        if (!(key instanceof Error)) {
          keys.push(key);
          files.push(file);
        }
      }
    }
    const certificates = this.loadCertificates(hop, files);
    if (certificates.length === 0) return { keys, certificates };
    try {
      installCertificateSupport();
    } catch (error) {
      throw new ConfigError("certificateFile", (error as Error).message, { cause: error });
    }
    // Like OpenSSH: a key's certificate is offered first, then the bare key.
    const offered: ParsedKey[] = [];
    for (const key of keys) {
      const blob = key.getPublicSSH();
      for (const certificate of certificates) if (certificate.publicKey.equals(blob)) offered.push(certificateKey(key, certificate));
      offered.push(key);
    }
    return { keys: offered, certificates };
  }

  /** The certificate option's files (must be readable), ssh_config's, and `<identity>-cert.pub` beside each identity. */
  private loadCertificates(hop: Hop, identityFiles: readonly string[]): SshCertificate[] {
    const certificates: SshCertificate[] = [];
    const read = (file: string, required: boolean): void => {
      let text: string;
      try {
        text = readFileSync(file, "utf8");
      } catch (error) {
        if (!required) return;
        throw new ConfigError("certificateFile", `cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`, { cause: error });
      }
      const certificate = parseSshCertificate(text);
      if (certificate instanceof Error) {
        if (!required) return;
        throw new ConfigError("certificateFile", `cannot use ${file}: ${certificate.message}`);
      }
      if (!certificates.some((known) => known.blob.equals(certificate.blob))) certificates.push(certificate);
    };
    for (const file of this.options.certificateFiles) read(file, true);
    for (const file of hop.certificateFiles) read(file, false);
    for (const file of identityFiles) read(`${file}-cert.pub`, false);
    return certificates;
  }

  /** The agent to forward to the final host, when forwarding is on (the option, else ssh_config's ForwardAgent). */
  private agentForwarding(final: Hop): string | undefined {
    if (!(this.options.forwardAgent ?? final.forwardAgent ?? false)) return undefined;
    const agent = this.options.agent === false ? undefined : (this.options.agent ?? process.env["SSH_AUTH_SOCK"]);
    // Like OpenSSH, ssh_config's ForwardAgent without an agent forwards nothing; the option asks for it explicitly.
    if (!agent && this.options.forwardAgent === true) throw new ConfigError("forwardAgent", "there is no agent to forward: set agent or SSH_AUTH_SOCK");
    return agent || undefined;
  }

  private authentication(hop: Hop, promptSignal: AbortSignal): HopAuth {
    const username = hop.user;
    const password = this.options.password;
    const agent = this.options.agent === false || this.options.identitiesOnly ? undefined : (this.options.agent ?? process.env["SSH_AUTH_SOCK"]);
    const attempts: AnyAuthMethod[] = [];
    if (agent) attempts.push({ type: "agent", username, agent: certificateAgent(agent) });
    const { keys, certificates } = this.loadKeys(hop);
    for (const key of keys) attempts.push({ type: "publickey", username, key });
    const onKeyboardInteractive = this.options.onKeyboardInteractive;
    if (onKeyboardInteractive !== undefined) {
      const hopTarget: Target = { host: hop.host, port: hop.port, user: hop.user };
      attempts.push({ type: "keyboard-interactive", username, prompt: keyboardInteractivePrompt(onKeyboardInteractive, hopTarget, promptSignal) });
      if (password !== undefined) attempts.push({ type: "password", username, password });
    } else if (password !== undefined) {
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
    const handler: AuthHandler = (methodsLeft) => {
      while (attempts.length > 0) {
        const attempt = attempts.shift() as AnyAuthMethod;
        const method = attempt.type === "agent" ? "publickey" : attempt.type;
        if (!methodsLeft || methodsLeft.includes(method as AuthenticationType)) return attempt;
      }
      return false;
    };
    return { handler, certificates };
  }

  private hostKeyAlgorithms(hop: Hop, knownHosts: readonly KnownHostsEntry[]): ConnectConfig["algorithms"] {
    const algorithms = this.options.algorithms;
    if (algorithms?.serverHostKey !== undefined || this.options.hostKeyChecking === "insecure-accept-any") return algorithms;
    // Like OpenSSH, ask first for host certificates when a @cert-authority line names the host, then for the key
    // types known_hosts holds for it, so a host with several keys presents one we can check.
    const certificates =
      certificateAuthorityFor(knownHosts, hop.host, hop.port) !== undefined && hostCertificateSupport().available
        ? (HOST_CERTIFICATE_KEY_ALGORITHMS as ServerHostKeyAlgorithm[])
        : [];
    const preferred = [...certificates, ...knownKeyTypes(knownHosts, hop.host, hop.port).flatMap(algorithmsForKeyType)];
    if (preferred.length === 0) return algorithms;
    const order = [...new Set([...preferred, ...DEFAULT_HOST_KEY_ALGORITHMS])];
    // ssh2's default is this same list: asking for it by name would build a key-exchange offer for every
    // connection (kept for its life, re-keys use it) instead of sharing ssh2's one.
    if (algorithms === undefined && order.every((name, index) => name === DEFAULT_HOST_KEY_ALGORITHMS[index])) return undefined;
    return { ...algorithms, serverHostKey: order };
  }

  private handshake(
    client: Client,
    hop: Hop,
    sock: Socket | Duplex,
    knownHosts: KnownHostsEntry[],
    authHandler: AuthHandler,
    readyTimeout: number,
    signal: AbortSignal | undefined,
    agentForwarding?: string,
  ): Promise<void> {
    const hopTarget: Target = { host: hop.host, port: hop.port, user: hop.user };
    let hostKeyError: TunnelError | undefined;
    const policy = this.options.hostKeyChecking;
    const knownHostsFiles = this.knownHostsFiles();
    const refuse = (message: string, key: Buffer, cause?: unknown): false => {
      hostKeyError = new HostKeyError(message, { target: hopTarget, fingerprint: fingerprint(key), ...(cause === undefined ? {} : { cause }) });
      return false;
    };
    // ssh2 keeps the verifier for the connection's life (every re-key asks it again), so it must not hold on to the
    // parsed known_hosts: once a key was accepted, a re-key must present that same key, and `known` goes.
    let known: KnownHostsEntry[] | undefined = knownHosts;
    const checkHostKey = (presented: Buffer): boolean => {
      const entries = known ?? [];
      if (policy === "insecure-accept-any") return true;
      let key = presented;
      // What a refused host certificate adds to the refusal of its plain key.
      let certificateProblem: string | undefined;
      if (blobKeyType(presented)?.endsWith("-cert-v01@openssh.com")) {
        const certified = verifyHostCertificate(entries, hop.host, hop.port, presented);
        const certificate = certified.certificate;
        if (certified.status === "trusted") return true;
        if (certified.status === "revoked") {
          const shown = `host certificate "${certified.certificate.keyId}" (${certified.certificate.type} ${fingerprint(certified.certificate.publicKey)})`;
          return refuse(
            `the ${shown} of ${formatTarget(hopTarget)} is revoked in ${certified.entry.file}:${certified.entry.line}`,
            certified.certificate.publicKey,
          );
        }
        if (certificate === undefined) return refuse(`${formatTarget(hopTarget)} presented a ${certified.problem}`, presented);
        // Like OpenSSH: a certificate that does not verify leaves its plain key, which known_hosts may list itself.
        certificateProblem = certified.problem;
        key = certificate.publicKey;
      }
      const verdict = verifyHostKey(entries, hop.host, hop.port, key);
      const shown = `${blobKeyType(key) ?? "unknown"} ${fingerprint(key)}`;
      const because = certificateProblem === undefined ? "" : `; the ${certificateProblem}`;
      if (verdict.status === "trusted") return true;
      if (verdict.status === "revoked") {
        return refuse(`the host key of ${formatTarget(hopTarget)} (${shown}) is revoked in ${verdict.entry.file}:${verdict.entry.line}`, key);
      }
      if (verdict.status === "changed") {
        const where = verdict.entries.map((entry) => `${entry.file}:${entry.line}`).join(", ");
        return refuse(
          `the host key of ${formatTarget(hopTarget)} has CHANGED: the server presented ${shown}, known_hosts lists other keys (${where}); refusing to connect${because}`,
          key,
        );
      }
      if (certificateProblem !== undefined) {
        return refuse(
          `the host key of ${formatTarget(hopTarget)} (${shown}) is not in known_hosts and its host certificate is not trusted: the ${certificateProblem}`,
          key,
        );
      }
      if (policy === "accept-new") {
        const file = knownHostsFiles[0] as string;
        try {
          mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
          appendFileSync(file, `${knownHostsLine(hop.host, hop.port, key)}\n`, { mode: 0o600 });
          const added = parseKnownHosts(knownHostsLine(hop.host, hop.port, key), file);
          entries.push(...added);
          return true;
        } catch (error) {
          return refuse(`cannot record the new host key of ${formatTarget(hopTarget)} in ${file}: ${(error as Error).message}`, key, error);
        }
      }
      const authority = certificateAuthorityFor(entries, hop.host, hop.port);
      const support = hostCertificateSupport();
      if (authority !== undefined && !support.available) {
        return refuse(
          `the host key of ${formatTarget(hopTarget)} (${shown}) is not in known_hosts; ${authority.file}:${authority.line} trusts a certificate authority for it, but host certificates are off in this process (${support.reason})`,
          key,
        );
      }
      if (authority !== undefined) {
        return refuse(
          `the host key of ${formatTarget(hopTarget)} (${shown}) is not in known_hosts, and the server presented no host certificate for the certificate authority of ${authority.file}:${authority.line}`,
          key,
        );
      }
      return refuse(`the host key of ${formatTarget(hopTarget)} (${shown}) is not in known_hosts and hostKeyChecking is "strict"`, key);
    };
    let accepted: Buffer | undefined;
    const hostVerifier = (key: Buffer, verify: (valid: boolean) => void): void => {
      if (accepted) return verify(accepted.equals(key));
      const valid = checkHostKey(key);
      if (valid && policy !== "insecure-accept-any") {
        // A copy of its own: a small Buffer.from() would keep a whole shared 8 KiB pool slab alive.
        accepted = Buffer.allocUnsafeSlow(key.length);
        key.copy(accepted);
        known = undefined;
      }
      verify(valid);
    };

    const config: ConnectConfig = {
      sock: sock as NonNullable<ConnectConfig["sock"]>,
      host: hop.host,
      port: hop.port,
      username: hop.user,
      readyTimeout,
      keepaliveInterval: this.options.keepaliveInterval,
      keepaliveCountMax: this.options.keepaliveCountMax,
      hostVerifier,
      authHandler: authHandler as unknown as NonNullable<ConnectConfig["authHandler"]>,
      tryKeyboard: this.options.password !== undefined || this.options.onKeyboardInteractive !== undefined,
    };
    if (agentForwarding !== undefined) {
      config.agent = agentForwarding;
      config.agentForward = true;
    }
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
        settle(
          hostKeyError ??
            firstError ??
            new ConnectError(`the server closed the connection during the handshake (${formatTarget(hopTarget)})`, { target: hopTarget }),
        );
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

/** The TCP connect of the first hop gets `ms` (later hops are channels through the previous one). */
function limitTcpConnect(socket: Socket, ms: number): void {
  const timer = setTimeout(() => {
    const error = Object.assign(new Error(`TCP connect timed out after ${ms} ms (connectTimeout)`), { code: "ETIMEDOUT" });
    socket.destroy(error);
  }, ms);
  const clear = (): void => clearTimeout(timer);
  socket.once("connect", clear);
  socket.once("close", clear);
}

function parseKey(data: Buffer | string, passphrase: string | undefined): ParsedKey | Error {
  const parsed = loadSsh2().utils.parseKey(data, passphrase);
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

type KeyboardPrompt = Extract<AnyAuthMethod, { type: "keyboard-interactive" }>["prompt"];

/** Hand each keyboard-interactive round to the caller's callback; its answers go to the server and nowhere else. */
function keyboardInteractivePrompt(handler: KeyboardInteractiveHandler, target: Target, signal: AbortSignal): KeyboardPrompt {
  return (name, instructions, _language, prompts, finish) => {
    if (prompts.length === 0) return finish([]);
    const request = { target, name, instructions, prompts: prompts.map(({ prompt, echo }) => ({ prompt, echo: echo === true })), signal };
    Promise.resolve()
      .then(() => handler(request))
      .then(
        (answers) => {
          if (!Array.isArray(answers) || answers.length !== prompts.length || answers.some((answer) => typeof answer !== "string")) finish([]);
          else finish([...(answers as string[])]);
        },
        // A failed callback fails the round: the server then refuses the login, which reports an AuthenticationError.
        () => finish([]),
      );
  };
}

/** A refused login with certificates on offer: say which certificate problems the local check finds. */
function explainCertificates(error: unknown, hop: Hop, certificates: readonly SshCertificate[]): unknown {
  if (certificates.length === 0 || !hasCode(error, "AUTHENTICATION")) return error;
  const problems = certificates.map((certificate) => sshCertificateProblem(certificate, hop.user)).filter((problem) => problem !== undefined);
  if (problems.length === 0) return error;
  return new AuthenticationError(`${error.message} (${problems.join("; ")})`, { target: error.target, cause: error });
}
