// The pool's end-to-end case (`runPoolConcurrencyCase` from @tunnel-sh/testing, also run by the pool's own tests
// against the fake transport) against a real sshd over both transports: 200 concurrent `sleep 0.05; echo ok` commands
// through pool leases.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ConnectionPool } from "@tunnel-sh/pool";
import { checkPoolConcurrencyReport, runPoolConcurrencyCase, startSshd } from "@tunnel-sh/testing";
import type { Sshd } from "@tunnel-sh/testing";
import { makeTransport, TRANSPORTS } from "./support/transports.js";

describe.each([10, 3])("pool against a real sshd with MaxSessions %i", (maxSessions) => {
  let sshd: Sshd;
  beforeAll(async () => {
    sshd = await startSshd({ maxSessions });
  });
  afterAll(async () => {
    await sshd?.stop();
  });

  it.each(TRANSPORTS)(
    "runs 200 concurrent commands over %s: all succeed, within the connection limit, all idle at the end",
    async (name) => {
      const report = await runPoolConcurrencyCase({
        transport: makeTransport(name, sshd),
        // A generous acquire timeout: on a loaded machine the last of 200 commands may wait longer than the default 30 s.
        createPool: (transport) => new ConnectionPool(transport, { maxConnectionsPerKey: 4, maxChannelsPerConnection: 10, acquireTimeoutMs: 120_000 }),
        maxConnections: 4,
        target: { host: sshd.host, port: sshd.port, user: sshd.users.plain.name },
      });
      expect(checkPoolConcurrencyReport(report)).toEqual([]);
      expect(report.peakConnections).toBeLessThanOrEqual(4);
      expect(report.statsAtEnd.busyChannels).toBe(0);
    },
    180_000,
  );
});
