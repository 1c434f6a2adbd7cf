/**
 * What the master's own session tells about the server: dropbear takes at most 9 000 bytes in one exec request (a
 * longer one ends the whole connection), so over dropbear the connection says so (`maxCommandBytes`) and refuses a
 * longer command line itself, leaving the connection usable; over OpenSSH's sshd it sets no limit.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runProcess } from "@tunnel-sh/core";
import { dropbearSupport, sshdSupport, startDropbear, startSshd, type Dropbear, type Sshd } from "@tunnel-sh/testing";
import { OpenSshTransport } from "../src/index.js";

const servers = [
  ["dropbear", dropbearSupport(), () => startDropbear()],
  ["sshd", sshdSupport(), () => startSshd()],
] as const;

for (const [name, support, start] of servers) {
  describe.runIf(support.available)(`the openssh transport learns the server's command limit (${name})`, () => {
    let server: Dropbear | Sshd;
    let transport: OpenSshTransport;
    beforeAll(async () => {
      server = await start();
      transport = new OpenSshTransport({ identityFile: server.clientKeyPath, knownHostsFile: server.knownHostsPath, configFile: "/dev/null" });
    }, 60_000);
    afterAll(async () => {
      await server?.stop();
    });

    it(
      name === "dropbear" ? "sets maxCommandBytes below 9 000 and refuses a longer line without losing the connection" : "sets no maxCommandBytes",
      async () => {
        const connection = await transport.connect({ host: server.host, port: server.port, user: server.users.plain.name });
        try {
          // The first command rides on the master's session; the long one then needs a client of its own.
          expect((await runProcess(connection, { command: "true" })).exitCode).toBe(0);
          const long = `printf %s ${"x".repeat(6_000)} | wc -c`;
          if (name === "dropbear") {
            expect(connection.maxCommandBytes).toBeGreaterThan(1_000);
            expect(connection.maxCommandBytes).toBeLessThan(9_000);
            await expect(runProcess(connection, { command: long })).rejects.toMatchObject({ code: "VALIDATION" });
          } else {
            expect(connection.maxCommandBytes).toBeUndefined();
            expect(await runProcess(connection, { command: long })).toMatchObject({ exitCode: 0, stdout: expect.stringContaining("6000") as unknown });
          }
          expect(connection.closed).toBe(false);
          expect(await runProcess(connection, { command: "echo still" })).toMatchObject({ exitCode: 0, stdout: "still\n" });
        } finally {
          await connection.close();
        }
      },
    );
  });
}
