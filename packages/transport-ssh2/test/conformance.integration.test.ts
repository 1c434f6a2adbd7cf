import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { describeTransportConformance, sshdSupport, startSshd } from "@tunnel/testing";
import { Ssh2Transport } from "../src/index.js";

// Fails (never skips) in CI when sshd cannot run: sshdSupport() throws there.
const support = sshdSupport();

describe("sshd availability", () => {
  it("has a runnable sshd (in CI this is required)", () => {
    expect(support.available || !process.env["CI"]).toBe(true);
  });
});

if (support.available) {
  describeTransportConformance(
    "ssh2 on OpenSSH sshd",
    async () => {
      const sshd = await startSshd();
      return {
        transport: new Ssh2Transport({
          privateKey: sshd.clientKeyPath,
          knownHosts: sshd.knownHostsPath,
          sshConfig: false,
          agent: false,
        }),
        target: { host: sshd.host, port: sshd.port, user: sshd.users.plain.name },
        teardown: () => sshd.stop(),
      };
    },
    { describe, it, expect, beforeAll, afterAll },
  );
}
