import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestServer } from "@tunnel-sh/embedded-server";
import { describeTransportConformance } from "@tunnel-sh/testing";
import { OpenSshTransport } from "../src/index.js";

// The OpenSSH client talks to the embedded server like to any other: no root and no sshd needed.
describeTransportConformance(
  "openssh on the embedded test server",
  async () => {
    const server = await startTestServer();
    return {
      transport: new OpenSshTransport({
        identityFile: server.clientKeyPath,
        knownHostsFile: server.knownHostsPath,
        configFile: "/dev/null",
      }),
      target: server.target,
      teardown: () => server.close(),
    };
  },
  { describe, it, expect, beforeAll, afterAll },
);
