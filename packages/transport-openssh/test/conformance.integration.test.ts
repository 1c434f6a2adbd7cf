import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { describeTransportConformance, sshdSupport, startSshd } from "@tunnel-sh/testing";
import { OpenSshTransport } from "../src/index.js";

// Fails (never skips) in CI when sshd cannot run: sshdSupport() throws there.
const support = sshdSupport();

describe("sshd availability", () => {
  it("has a runnable sshd (in CI this is required)", () => {
    expect(support.available || !process.env["CI"]).toBe(true);
  });
});

if (support.available) {
  describeTransportConformance(
    "openssh on OpenSSH sshd",
    async () => {
      const sshd = await startSshd();
      return {
        transport: new OpenSshTransport({
          identityFile: sshd.clientKeyPath,
          knownHostsFile: sshd.knownHostsPath,
          configFile: "/dev/null",
        }),
        target: { host: sshd.host, port: sshd.port, user: sshd.users.plain.name },
        teardown: () => sshd.stop(),
      };
    },
    { describe, it, expect, beforeAll, afterAll },
  );
}
