import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runProcess, type Connection } from "@tunnel-sh/core";
import { dropbearSupport, startDropbear, type Dropbear } from "@tunnel-sh/testing";
import { Ssh2Transport } from "../src/index.js";
import { DROPBEAR_MAX_EXEC_COMMAND_BYTES } from "../src/server-software.js";
import { loadSsh2 } from "../src/ssh2-certificates.js";

// Fails (never skips) in CI when dropbear cannot run: dropbearSupport() throws there.
const support = dropbearSupport();

describe("dropbear availability for the exec-length cases", () => {
  it("has a runnable dropbear (in CI this is required)", () => {
    expect(support.available || !process.env["CI"]).toBe(true);
  });
});

/** What a raw ssh2 client sees when it sends an exec line of exactly `bytes` bytes to `dropbear`. */
async function rawExec(dropbear: Dropbear, bytes: number): Promise<string> {
  const client = new (loadSsh2().Client)();
  try {
    await new Promise<void>((resolve, reject) => {
      client.once("ready", resolve);
      client.once("error", reject);
      client.connect({ host: dropbear.host, port: dropbear.port, username: dropbear.users.plain.name, privateKey: readFileSync(dropbear.clientKeyPath) });
    });
    const line = `true ${"x".repeat(bytes - 5)}`;
    return await new Promise<string>((resolve) => {
      client.on("error", () => {});
      client.once("close", () => resolve("connection closed"));
      client.exec(line, (error, channel) => {
        if (error) return resolve(`refused: ${error.message}`);
        channel.resume();
        channel.stderr.resume();
        channel.once("close", (code: number | null) => resolve(`exit ${code}`));
      });
    });
  } finally {
    client.end();
  }
}

if (support.available) {
  describe("exec lines on dropbear", () => {
    let dropbear: Dropbear;
    let connection: Connection;

    beforeAll(async () => {
      dropbear = await startDropbear();
      const transport = new Ssh2Transport({ identityFile: dropbear.clientKeyPath, knownHostsFile: dropbear.knownHostsPath, configFile: false, agent: false });
      connection = await transport.connect({ host: dropbear.host, port: dropbear.port, user: dropbear.users.plain.name });
    });
    afterAll(async () => {
      await connection?.close();
      await dropbear?.stop();
    });

    it("the dropbear here takes an exec line of its MAX_CMD_LEN and drops the connection one byte past it", async () => {
      expect(await rawExec(dropbear, DROPBEAR_MAX_EXEC_COMMAND_BYTES)).toBe("exit 0");
      expect(await rawExec(dropbear, DROPBEAR_MAX_EXEC_COMMAND_BYTES + 1)).toBe("connection closed");
    });

    it("a command past dropbear's limit is a ValidationError before it is sent, and the connection stays usable", async () => {
      const refused = async (length: number): Promise<boolean> => {
        const error = await runProcess(connection, { command: `true ${"x".repeat(length)}` }).then(
          () => undefined,
          (caught: unknown) => caught,
        );
        if (error === undefined) return false;
        expect(error).toMatchObject({ name: "ValidationError", code: "VALIDATION", retryable: false });
        expect((error as Error).message).toMatch(/dropbear/);
        return true;
      };
      // The longest command the transport lets through, found from its answers alone.
      let low = 0;
      let high = DROPBEAR_MAX_EXEC_COMMAND_BYTES;
      expect(await refused(high)).toBe(true);
      while (high - low > 1) {
        const middle = Math.floor((low + high) / 2);
        if (await refused(middle)) high = middle;
        else low = middle;
      }
      // The wrapping (login shell line, own process group, </dev/null) takes its share, and dropbear takes the rest.
      expect(low).toBeGreaterThan(DROPBEAR_MAX_EXEC_COMMAND_BYTES / 2);
      // Just as long as the longest `true` let through: dropbear runs it.
      const longest = await runProcess(connection, { command: `echo ${"x".repeat(low)}` });
      expect(longest).toMatchObject({ exitCode: 0, stdout: `${"x".repeat(low)}\n` });
      expect(connection.closed).toBe(false);
      expect((await runProcess(connection, { command: "echo still-open" })).stdout).toBe("still-open\n");
    });
  });
}
