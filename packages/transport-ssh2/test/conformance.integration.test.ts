import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { describeTransportConformance, startSshd } from "@tunnel-sh/testing";
import { Ssh2Transport } from "../src/index.js";

// No guard: where sshd cannot run, startSshd() rejects with the reason and the suite fails rather than skips.
describeTransportConformance(
  "ssh2 on OpenSSH sshd",
  async () => {
    const sshd = await startSshd();
    return {
      transport: new Ssh2Transport({
        identityFile: sshd.clientKeyPath,
        knownHostsFile: sshd.knownHostsPath,
        configFile: false,
        agent: false,
      }),
      target: { host: sshd.host, port: sshd.port, user: sshd.users.plain.name },
      teardown: () => sshd.stop(),
    };
  },
  { describe, it, expect, beforeAll, afterAll },
);
