import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { describeTransportConformance, startTestServer } from "@tunnel/testing";
import { Ssh2Transport } from "../src/index.js";

// The embedded server needs neither root nor sshd: this suite runs on every machine.
describeTransportConformance(
  "ssh2 on the embedded test server",
  async () => {
    const server = await startTestServer();
    return {
      transport: new Ssh2Transport({
        privateKey: server.clientKeyPath,
        knownHosts: server.knownHostsPath,
        sshConfig: false,
        agent: false,
      }),
      target: server.target,
      teardown: () => server.close(),
    };
  },
  { describe, it, expect, beforeAll, afterAll },
);
