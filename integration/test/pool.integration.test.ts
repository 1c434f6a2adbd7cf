// The pool's end-to-end case (packages/pool/test/pool-integration-cases.ts, also run there against the pool's fake
// transport) against a real sshd over both transports: 200 concurrent `sleep 0.05; echo ok` commands through pool leases.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startSshd } from "@tunnel-sh/testing";
import type { Sshd } from "@tunnel-sh/testing";
import { checkPoolConcurrencyReport, runPoolConcurrencyCase } from "../../packages/pool/test/pool-integration-cases.js";
import { makeTransport, TRANSPORTS } from "./support/transports.js";

describe.each([10, 3])("pool against a real sshd with MaxSessions %i", (maxSessions) => {
  let sshd: Sshd;
  beforeAll(async () => {
    sshd = await startSshd({ maxSessions });
  });
  afterAll(async () => {
    await sshd?.stop();
  });

  it.each(TRANSPORTS)("runs 200 concurrent commands over %s: all succeed, within the connection limit, all idle at the end", async (name) => {
    const report = await runPoolConcurrencyCase({
      transport: makeTransport(name, sshd),
      target: { host: sshd.host, port: sshd.port, user: sshd.users.plain.name },
      config: { maxChannelsPerConnection: 10 },
    });
    expect(checkPoolConcurrencyReport(report)).toEqual([]);
    expect(report.peakConnections).toBeLessThanOrEqual(4);
    expect(report.statsAtEnd.busyChannels).toBe(0);
  }, 180_000);
});
