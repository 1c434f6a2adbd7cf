export { Ssh2Transport } from "./ssh2-transport.js";
export type { HostKeyPolicy, Ssh2TransportOptions, TransferOptions } from "./options.js";
export { normalizeError, type ErrorContext } from "./normalize-error.js";
export {
  parseKnownHosts,
  verifyHostKey,
  hostFieldMatches,
  knownHostsName,
  fingerprint,
  type HostKeyVerdict,
  type KnownHostsEntry,
} from "./known-hosts.js";
