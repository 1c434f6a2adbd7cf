export { OpenSshTransport } from "./transport.js";
export { OpenSshConnection } from "./connection.js";
export { OPENSSH_TRANSPORT_OPTIONS } from "./options.js";
export type { OpenSshTransportOptions } from "./options.js";
export { normalizeSshError, type SshFailure, type SshFailurePhase } from "./normalize-error.js";
export type { HostKeyChecking, SshTransportOptions } from "@tunnel-sh/core";
export { INHERITED_VARIABLES } from "./environment.js";
