export { Ssh2Transport } from "./ssh2-transport.js";
export { SSH2_TRANSPORT_OPTIONS } from "./options.js";
export type { Ssh2TransportOptions, TransferOptions } from "./options.js";
export { normalizeError, type ErrorContext } from "./normalize-error.js";
export { parseKnownHosts, verifyHostKey, hostFieldMatches, knownHostsName, fingerprint, type HostKeyVerdict, type KnownHostsEntry } from "./known-hosts.js";
export type { HostKeyChecking, SshTransportOptions } from "@tunnel-sh/core";
