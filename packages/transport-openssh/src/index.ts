export { OpenSshTransport } from "./transport.js";
export { OpenSshConnection } from "./connection.js";
export type { HostKeyChecking, OpenSshTransportOptions } from "./options.js";
export { normalizeSshError, type SshFailure, type SshFailurePhase } from "./normalize-error.js";
