import { randomBytes } from "node:crypto";
import { mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestServer, type TestServer } from "@tunnel-sh/embedded-server";
import { describeTransportConformance } from "@tunnel-sh/testing";
import { Ssh2Transport } from "../src/index.js";

function transportFor(server: TestServer): Ssh2Transport {
  return new Ssh2Transport({ identityFile: server.clientKeyPath, knownHostsFile: server.knownHostsPath, configFile: false, agent: false });
}

// The embedded server needs neither root nor sshd: this suite runs on every machine.
describeTransportConformance(
  "ssh2 on the embedded test server",
  async () => {
    const server = await startTestServer();
    return { transport: transportFor(server), target: server.target, teardown: () => server.close() };
  },
  { describe, it, expect, beforeAll, afterAll },
);

describe("ssh2 transfers through the embedded test server's SFTP", () => {
  let server: TestServer;
  let folder: string;

  beforeAll(async () => {
    server = await startTestServer();
    folder = await mkdtemp(join(tmpdir(), "tunnel-ssh2-embedded-"));
  });

  afterAll(async () => {
    await server?.close();
    if (folder) await rm(folder, { recursive: true, force: true });
  });

  it("uploads with a mode and downloads back, byte for byte", async () => {
    const connection = await transportFor(server).connect(server.target);
    try {
      const payload = randomBytes(4 * 1024 * 1024 + 3);
      await writeFile(join(folder, "source.bin"), payload);
      await connection.upload({ localPath: join(folder, "source.bin"), remotePath: join(folder, "remote.bin"), mode: 0o640 });
      expect((await stat(join(folder, "remote.bin"))).mode & 0o777).toBe(0o640);
      await connection.download({ remotePath: join(folder, "remote.bin"), localPath: join(folder, "back.bin") });
      expect((await readFile(join(folder, "back.bin"))).equals(payload)).toBe(true);
    } finally {
      await connection.close();
    }
  });
});
