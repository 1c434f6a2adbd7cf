import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { describeTransportConformance, dropbearSupport, startDropbear } from "@tunnel-sh/testing";
import { OpenSshTransport } from "../src/index.js";

// Fails (never skips) in CI when dropbear cannot run: dropbearSupport() throws there.
const support = dropbearSupport();

describe("dropbear availability", () => {
  it("has a runnable dropbear (in CI this is required)", () => {
    expect(support.available || !process.env["CI"]).toBe(true);
  });
});

if (support.available) {
  // Every group is on: dropbear allocates ptys, honours SSH `signal` requests, and serves SFTP through
  // /usr/lib/sftp-server (openssh-sftp-server, one of the system packages the tests install).
  describeTransportConformance(
    "openssh on dropbear",
    async () => {
      const dropbear = await startDropbear();
      return {
        transport: new OpenSshTransport({
          identityFile: dropbear.clientKeyPath,
          knownHostsFile: dropbear.knownHostsPath,
          configFile: "/dev/null",
        }),
        target: { host: dropbear.host, port: dropbear.port, user: dropbear.users.plain.name },
        teardown: () => dropbear.stop(),
      };
    },
    { describe, it, expect, beforeAll, afterAll },
  );
}
