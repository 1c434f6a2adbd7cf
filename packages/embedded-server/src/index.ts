export { startTestServer } from "./embedded-server.js";
export type { ResolvedTestServerUser, TestServer, TestServerFaults, TestServerOptions, TestServerUser } from "./embedded-server.js";
