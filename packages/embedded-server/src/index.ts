export { startTestServer } from "./embedded-server.js";
export type { ResolvedTestServerUser, TestServer, TestServerFaults, TestServerOptions, TestServerUser } from "./test-server.js";
export { TestServerOptionError } from "./test-server-options.js";
