import { describe, expect, it } from "vitest";
import { inOwnProcessGroup, loginShellCommand } from "@tunnel-sh/core";
import { Ssh2Transport } from "../src/index.js";
import { FakeClient } from "./fake-client.js";

// The first hop's TCP socket goes to a loopback port nobody listens on; the fake client ignores it.
const target = { host: "127.0.0.1", port: 1, user: "deploy" };

function transportFor(client: FakeClient): Ssh2Transport {
  return new Ssh2Transport({
    createClient: () => client.asClient(),
    configFile: false,
    agent: false,
    hostKeyChecking: "insecure-accept-any",
    readyTimeout: 5000,
  });
}

/** The exec line for `script` when the command has no stdin (it then reads /dev/null on the host). */
function noStdin(script: string): string {
  return `${loginShellCommand(script)} </dev/null`;
}

/** The line the connection sends for `command`'s first spawn without a pty. */
async function firstLine(client: FakeClient, command: string): Promise<string> {
  const connection = await transportFor(client).connect(target);
  const remote = connection.spawn({ command });
  remote.stdin.end();
  await new Promise((resolve) => setImmediate(resolve));
  const line = client.execs[0]?.command ?? "";
  (await client.open()).finish(0);
  await remote.exit;
  await connection.close();
  return line;
}

describe("the session-group probe at connect", () => {
  it("asks the server once per connection, before the connection is handed out", async () => {
    const client = new FakeClient();
    const connection = await transportFor(client).connect(target);
    expect(client.probes.length).toBe(1);
    expect(client.execs.length).toBe(0);
    await connection.close();
  });

  it("runs commands as they are where the session's command leads its own group (OpenSSH)", async () => {
    const client = new FakeClient();
    client.sessionGroup = "group";
    expect(await firstLine(client, "sleep 300 & wait")).toBe(noStdin("sleep 300 & wait"));
  });

  it("runs commands in a process group of their own where it does not (dropbear)", async () => {
    const client = new FakeClient();
    client.sessionGroup = "pid";
    expect(await firstLine(client, "sleep 300 & wait")).toBe(noStdin(inOwnProcessGroup("sleep 300 & wait")));
  });

  it("asks no probe of OpenSSH or dropbear, whose identification line says how they signal", async () => {
    for (const [software, wrapped] of [
      ["OpenSSH_9.2p1 Debian-2+deb12u3", false],
      ["dropbear_2022.83", true],
    ] as const) {
      const client = new FakeClient();
      (client as unknown as { _remoteVer: string })._remoteVer = software;
      client.sessionGroup = wrapped ? "group" : "pid";
      const command = "sleep 300 & wait";
      expect(await firstLine(client, command)).toBe(noStdin(wrapped ? inOwnProcessGroup(command) : command));
      expect(client.probes.length).toBe(0);
    }
  });

  it("believes the probe on any other server, and runs the probe itself as the server starts it", async () => {
    const client = new FakeClient();
    (client as unknown as { _remoteVer: string })._remoteVer = "libssh_0.10.6";
    client.sessionGroup = "pid";
    expect(await firstLine(client, "sleep 300 & wait")).toBe(noStdin(inOwnProcessGroup("sleep 300 & wait")));
    expect(client.probes.length).toBe(1);
  });

  it("keeps a pty command as it is on such a server: the terminal's group is the session's", async () => {
    const client = new FakeClient();
    client.sessionGroup = "pid";
    const connection = await transportFor(client).connect(target);
    const remote = connection.spawn({ command: "top", pty: true });
    remote.stdin.end();
    await new Promise((resolve) => setImmediate(resolve));
    expect(client.execs[0]?.command).toBe(loginShellCommand("top"));
    (await client.open()).finish(0);
    await remote.exit;
    await connection.close();
  });

  it("connects anyway when the probe's channel is refused, keeping the guess from the server's version", async () => {
    const client = new FakeClient();
    client.sessionGroup = new Error("open failed");
    expect(await firstLine(client, "sleep 300 & wait")).toBe(noStdin("sleep 300 & wait"));
  });

  it("rejects with AbortError, closing the connection, when the connect is aborted during the probe", async () => {
    const client = new FakeClient();
    const controller = new AbortController();
    // A server that never answers the probe's channel: only the abort can end the connect.
    const asked: string[] = [];
    client.exec = ((command: string) => {
      asked.push(command);
      queueMicrotask(() => controller.abort());
      return client;
    }) as typeof client.exec;
    const error = await transportFor(client)
      .connect(target, { signal: controller.signal })
      .catch((caught: unknown) => caught);
    expect(asked.length).toBe(1);
    expect((error as { code?: string }).code).toBe("ABORTED");
    expect(client.connected).toBe(false);
  });
});
