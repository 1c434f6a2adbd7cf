/**
 * The transport conformance suite against a throwaway dropbear, as every transport runs it: one case that fails
 * (never skips) in CI when dropbear cannot run here, then the whole suite as the plain test user.
 *
 * @example
 * describeDropbearConformance("ssh2 on dropbear", (dropbear) => new Ssh2Transport({ identityFile: dropbear.clientKeyPath,
 *   knownHostsFile: dropbear.knownHostsPath }), { describe, it, expect, beforeAll, afterAll });
 */
import type { Transport } from "@tunnel-sh/core";
import { dropbearSupport, startDropbear, type Dropbear } from "./dropbear.js";
import { describeTransportConformance, type ConformanceGroups, type TestRunner } from "./transport-conformance.js";

/**
 * Register the availability case and, when dropbear can run, the conformance suite for the transport `transport`
 * makes for the started server. `groups` as in `describeTransportConformance` (each on by default: dropbear
 * allocates ptys, honours SSH `signal` requests, and serves SFTP through `/usr/lib/sftp-server`).
 */
export function describeDropbearConformance(
  name: string,
  transport: (dropbear: Dropbear) => Transport,
  runner: TestRunner,
  groups: ConformanceGroups = {},
): void {
  // dropbearSupport() throws in CI when dropbear cannot run.
  const support = dropbearSupport();
  runner.describe("dropbear availability", () => {
    runner.it("has a runnable dropbear (in CI this is required)", () => {
      runner.expect(support.available || !process.env["CI"]).toBe(true);
    });
  });
  if (!support.available) return;
  describeTransportConformance(
    name,
    async () => {
      const dropbear = await startDropbear();
      return {
        transport: transport(dropbear),
        target: { host: dropbear.host, port: dropbear.port, user: dropbear.users.plain.name },
        teardown: () => dropbear.stop(),
      };
    },
    runner,
    groups,
  );
}
