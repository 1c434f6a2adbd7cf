/**
 * One hop's SSH handshake on a socket: key exchange, host key check, authentication, and the socket itself (a TCP
 * connection with TCP_NODELAY for the first hop, a `direct-tcpip` channel through the previous hop for the others).
 */
import { connect as netConnect, type Socket } from "node:net";
import type { Duplex } from "node:stream";
import { AbortError, ConnectError, formatTarget, type Target } from "@tunnel-sh/core";
import type { Client, ConnectConfig } from "ssh2";
import type { Hop } from "./hop.js";
import type { AuthHandler } from "./hop-authentication.js";
import { hostKeyAlgorithms, hostKeyCheck } from "./host-key-verification.js";
import type { KnownHostsEntry } from "./known-hosts.js";
import { normalizeError } from "./normalize-error.js";
import { secretsOf, type ResolvedOptions } from "./options.js";

/** The first hop's TCP socket, with Nagle off; its connect gets `connectTimeout` ms. */
export function firstHopSocket(hop: Hop, connectTimeout: number): Socket {
  const socket = netConnect({ host: hop.host, port: hop.port });
  // ssh2 leaves Nagle on: 44 ms per round trip instead of ~2.6 ms on an open connection.
  socket.setNoDelay(true);
  socket.on("error", () => {}); // reported through the client
  limitTcpConnect(socket, connectTimeout);
  return socket;
}

/** The TCP connect of the first hop gets `ms` (later hops are channels through the previous one). */
function limitTcpConnect(socket: Socket, ms: number): void {
  const timer = setTimeout(() => {
    const error = Object.assign(new Error(`TCP connect timed out after ${ms} ms (connectTimeout)`), { code: "ETIMEDOUT" });
    socket.destroy(error);
  }, ms);
  // Both listeners go once either fires: a listener left on the socket would keep the timer for the connection's life.
  const clear = (): void => {
    clearTimeout(timer);
    socket.removeListener("connect", clear);
    socket.removeListener("close", clear);
  };
  socket.once("connect", clear);
  socket.once("close", clear);
}

/** Open a direct-tcpip channel from a jump host to the next hop. */
export function forward(jump: Client, hop: Hop, secrets: readonly (string | undefined)[]): Promise<Duplex> {
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

/** Errors after the handshake reach the connection through its own listener. */
function ignoreError(): void {}

/** Handshake and authenticate `client` on `sock`; rejects with a tunnel error and destroys the client on failure. */
export function handshake(
  options: ResolvedOptions,
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
  const check = hostKeyCheck(options, hop, knownHosts);
  const hostVerifier = check.hostVerifier;

  const config: ConnectConfig = {
    sock: sock as NonNullable<ConnectConfig["sock"]>,
    host: hop.host,
    port: hop.port,
    username: hop.user,
    readyTimeout,
    keepaliveInterval: options.keepaliveInterval,
    keepaliveCountMax: options.keepaliveCountMax,
    hostVerifier,
    authHandler: authHandler as unknown as NonNullable<ConnectConfig["authHandler"]>,
    tryKeyboard: options.password !== undefined || options.onKeyboardInteractive !== undefined,
  };
  if (agentForwarding !== undefined) {
    config.agent = agentForwarding;
    config.agentForward = true;
  }
  const algorithms = hostKeyAlgorithms(options, hop, knownHosts);
  if (algorithms) config.algorithms = algorithms;

  return new Promise<void>((resolve, reject) => {
    let settled = false;
    let firstError: unknown;
    const settle = (error?: unknown): void => {
      if (settled) return;
      settled = true;
      client.removeListener("ready", onReady);
      client.removeListener("close", onClose);
      // A listener of no state takes over: this one would keep the whole handshake (its config, keys, checks) alive.
      client.removeListener("error", onError);
      client.on("error", ignoreError);
      if (error === undefined) resolve();
      else reject(error);
    };
    const onReady = (): void => settle();
    const onClose = (): void => {
      if (signal?.aborted) return settle(new AbortError("the connect was aborted", { phase: "connect", target: hopTarget }));
      settle(
        check.refusal() ??
          firstError ??
          new ConnectError(`the server closed the connection during the handshake (${formatTarget(hopTarget)})`, { target: hopTarget }),
      );
    };
    // Until the handshake settles; `ignoreError` then stays attached for the client's life, since ssh2 throws on an
    // `error` event nobody listens to. A handshake timeout emits two errors ("Timed out while waiting for handshake", then
    // "Connection lost before handshake"); only the first one counts.
    const onError = (error: unknown): void => {
      if (settled) return;
      // ssh2 reports an unusable agent or a key that failed to sign, then goes on with the next method.
      const vendor = error as { level?: string; message?: string };
      if (vendor.level === "agent") return;
      if (vendor.level === "client-authentication" && !/authentication methods failed/i.test(vendor.message ?? "")) return;
      firstError ??= error;
      settle(check.refusal() ?? normalizeError(firstError, { phase: "connect", target: hopTarget, secrets: secretsOf(options) }));
    };
    client.on("error", onError);
    client.once("ready", onReady);
    client.once("close", onClose);
    try {
      client.connect(config);
    } catch (error) {
      settle(normalizeError(error, { phase: "connect", target: hopTarget, secrets: secretsOf(options) }));
    }
  }).catch((error: unknown) => {
    client.destroy();
    throw error;
  });
}
