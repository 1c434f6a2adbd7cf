import { spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { connect as tcpConnect } from "node:net";
import { homedir, userInfo } from "node:os";
import { setTimeout as sleep } from "node:timers/promises";
import ssh2, { type Client } from "ssh2";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestServer, type TestServer } from "@tunnel-sh/embedded-server";
import { closed, collect, connect, generateKey, open, opensshOptions, run, waitForOutput } from "./embedded-server-client.js";
import { alive, commandLine, eventually } from "./local-processes.js";

/** Send a signal request even after stdin was ended (ssh2's client only sends one before). */
function signalAfterEof(channel: ssh2.ClientChannel, name: string): void {
  const internals = channel as unknown as { _client: { _protocol: { signal(id: number, name: string): void } }; outgoing: { id: number } };
  internals._client._protocol.signal(internals.outgoing.id, name);
}

function openSsh(server: TestServer, command: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn("ssh", [...opensshOptions(server), "-p", String(server.port), `${server.target.user}@${server.host}`, command], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString("utf8")));
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString("utf8")));
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}

/**
 * A command's session process is titled like sshd's (`sshd: user@notty`), and killing it drops the connection and
 * hangs up the command.
 */
async function expectSessionProcessLikeSshd(server: TestServer): Promise<void> {
  const own = await connect(server);
  const lost = closed(own);
  const channel = await open(own, "echo $PPID $$; sleep 60");
  const [sessionPid = 0, shellPid = 0] = (await waitForOutput(channel, "\n")).trim().split(" ").map(Number);
  expect(commandLine(sessionPid)).toMatch(new RegExp(`^sshd: ${userInfo().username}@notty`));
  process.kill(sessionPid, "SIGKILL");
  await lost;
  expect(await eventually(() => !alive(shellPid))).toBe(true);
}

describe("startTestServer", () => {
  let server: TestServer;
  let client: Client;

  beforeAll(async () => {
    server = await startTestServer();
    client = await connect(server);
  });

  afterAll(async () => {
    client?.end();
    await server?.close();
  });

  describe("host key and authentication", () => {
    it("publishes its ed25519 host key as a known_hosts line and file", () => {
      expect(server.host).toBe("127.0.0.1");
      expect(server.port).toBeGreaterThan(0);
      expect(server.hostPublicKey).toMatch(/^ssh-ed25519 AAAA[A-Za-z0-9+/=]+$/);
      expect(server.knownHostsLine).toBe(`[127.0.0.1]:${server.port} ${server.hostPublicKey}`);
      expect(readFileSync(server.knownHostsPath, "utf8")).toBe(`${server.knownHostsLine}\n`);
    });

    it("accepts the generated client key for the default user, named after the OS user", async () => {
      expect(server.target).toEqual({ host: "127.0.0.1", port: server.port, user: userInfo().username });
      expect(await run(client, "echo key-ok")).toMatchObject({ code: 0, stdout: "key-ok\n" });
    });

    it("accepts the user's password and refuses a wrong one", async () => {
      const password = server.users[0]?.password;
      expect(password).toMatch(/.{8,}/);
      const byPassword = await connect(server, { privateKey: undefined, password });
      expect(await run(byPassword, "echo password-ok")).toMatchObject({ code: 0, stdout: "password-ok\n" });
      byPassword.end();
      const wrong = connect(server, { privateKey: undefined, password: `${password}-wrong` });
      await expect(wrong).rejects.toMatchObject({ level: "client-authentication" });
    });

    it("refuses a key it does not trust and a user it does not know", async () => {
      const stranger = generateKey();
      await expect(connect(server, { privateKey: stranger.private })).rejects.toMatchObject({ level: "client-authentication" });
      await expect(connect(server, { username: "nobody-here" })).rejects.toMatchObject({ level: "client-authentication" });
    });

    it("authenticates configured users by their own password or key only", async () => {
      const alicesKey = generateKey();
      const custom = await startTestServer({
        users: [
          { name: "alice", publicKeys: [alicesKey.public] },
          { name: "bob", password: "bob-secret", publicKeys: [] },
        ],
      });
      try {
        expect(custom.target.user).toBe("alice");
        const alice = await connect(custom, { username: "alice", privateKey: alicesKey.private });
        expect(await run(alice, "echo alice")).toMatchObject({ code: 0, stdout: "alice\n" });
        alice.end();
        const bob = await connect(custom, { username: "bob", privateKey: undefined, password: "bob-secret" });
        bob.end();
        // The generated client key is not trusted for users given their own keys (or none).
        await expect(connect(custom, { username: "alice" })).rejects.toMatchObject({ level: "client-authentication" });
        await expect(connect(custom, { username: "bob" })).rejects.toMatchObject({ level: "client-authentication" });
        await expect(connect(custom, { username: "alice", privateKey: undefined, password: "bob-secret" })).rejects.toMatchObject({
          level: "client-authentication",
        });
      } finally {
        await custom.close();
      }
    });

    it("lets the OpenSSH client in with clientKeyPath, checking the host key strictly against knownHostsPath", async () => {
      const result = await openSsh(server, "echo from-openssh; exit 7");
      expect(result).toMatchObject({ code: 7, stdout: "from-openssh\n" });
    });
  });

  describe("exec", () => {
    it("runs through /bin/sh -c as the current OS user, in the home folder, with exit codes and separate stderr", async () => {
      const result = await run(client, 'echo "$(id -un) $(pwd) $SHELL"; echo oops >&2; exit 42');
      expect(result).toEqual({ code: 42, signal: null, stdout: `${userInfo().username} ${homedir()} /bin/sh\n`, stderr: "oops\n" });
    });

    it("passes stdin through and ends it on EOF", async () => {
      const channel = await open(client, "wc -c");
      const result = collect(channel);
      channel.end("x".repeat(100_000));
      expect(await result).toMatchObject({ code: 0, stdout: "100000\n" });
    });

    it("delivers stdout and stderr in full when both wait for the client's window at once", async () => {
      const MiB = 1024 * 1024;
      const channel = await open(client, `head -c ${4 * MiB} /dev/zero & head -c ${4 * MiB} /dev/zero >&2; wait; echo done >&2`);
      channel.end();
      // Not reading for a while fills the window (2 MiB) while both streams have more to send.
      channel.pause();
      channel.stderr.pause();
      await sleep(500);
      let stdout = 0;
      let stderr = "";
      channel.on("data", (chunk: Buffer) => (stdout += chunk.length));
      channel.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString("latin1")));
      channel.resume();
      channel.stderr.resume();
      const status = await new Promise<number | null>((resolve) => channel.once("close", (code: number | null) => resolve(code)));
      expect(status).toBe(0);
      expect(stdout).toBe(4 * MiB);
      expect(stderr.length).toBe(4 * MiB + "done\n".length);
      expect(stderr.endsWith("\0done\n")).toBe(true);
    });

    it("sends exit-signal with the RFC 4254 name (the client adds SIG), and 128+n for signals RFC 4254 does not name", async () => {
      expect(await run(client, "kill -TERM $$")).toMatchObject({ code: null, signal: "SIGTERM" });
      expect(await run(client, "kill -KILL $$")).toMatchObject({ code: null, signal: "SIGKILL" });
      expect(await run(client, "kill -PROF $$")).toMatchObject({ code: 128 + 27, signal: null });
    });

    it("delivers signal requests to the command's whole process group", async () => {
      const channel = await open(client, "sleep 300 & echo $!; wait");
      const sleeper = Number((await waitForOutput(channel, "\n")).trim());
      expect(alive(sleeper)).toBe(true);
      const result = collect(channel);
      channel.signal("TERM");
      expect(await result).toMatchObject({ code: null, signal: "SIGTERM" });
      expect(await eventually(() => !alive(sleeper))).toBe(true);
    });

    it("still honours signal requests after the client ended stdin", async () => {
      const channel = await open(client, "echo started; exec sleep 300");
      const started = waitForOutput(channel, "started");
      channel.end();
      await started;
      const result = collect(channel);
      signalAfterEof(channel, "TERM");
      expect(await result).toMatchObject({ code: null, signal: "SIGTERM" });
    });

    it("sets env requests in the command's environment, and refuses names acceptEnv does not list", async () => {
      const result = await run(client, 'printf "%s|%s" "$TUNNEL_ONE" "$TUNNEL_TWO"', {
        env: { TUNNEL_ONE: "one 'quoted' $value", TUNNEL_TWO: "2" },
      });
      expect(result).toMatchObject({ code: 0, stdout: "one 'quoted' $value|2" });

      const strict = await startTestServer({ acceptEnv: ["LC_*"], env: { TUNNEL_BASE: "base" } });
      try {
        const strictClient = await connect(strict);
        const filtered = await run(strictClient, 'printf "%s|%s|%s" "$LC_TUNNEL" "${TUNNEL_OTHER-unset}" "$TUNNEL_BASE"', {
          env: { LC_TUNNEL: "kept", TUNNEL_OTHER: "dropped" },
        });
        expect(filtered).toMatchObject({ code: 0, stdout: "kept|unset|base" });
        strictClient.end();
      } finally {
        await strict.close();
      }
    });

    it("gives a real terminal on a pty request (TERM set, \\r\\n line ends), and none without", async () => {
      const withPty = await run(client, 'tty && echo "$TERM" && echo two', { pty: { term: "vt220", rows: 30, cols: 100 } });
      expect(withPty.code).toBe(0);
      expect(withPty.stdout).toMatch(/^\/dev\/pts\/\d+\r\nvt220\r\ntwo\r\n$/);
      const size = await run(client, "stty size", { pty: { rows: 30, cols: 100 } });
      expect(size.stdout).toBe("30 100\r\n");
      const without = await run(client, "tty");
      expect(without.code).not.toBe(0);
    });

    it("serves each command from a session process titled like sshd's; killing it drops the connection", async () => {
      await expectSessionProcessLikeSshd(server);
    });
  });

  it("refuses the session channel past maxSessions (reason 2), and the connection stays usable", async () => {
    const limited = await startTestServer({ maxSessions: 2 });
    try {
      const limitedClient = await connect(limited);
      const first = await open(limitedClient, "read line");
      await open(limitedClient, "read line");
      await expect(open(limitedClient, "echo third")).rejects.toMatchObject({ reason: 2 });
      const firstDone = collect(first);
      first.end("go\n");
      await firstDone;
      expect(await run(limitedClient, "echo after")).toMatchObject({ code: 0, stdout: "after\n" });
      limitedClient.end();
    } finally {
      await limited.close();
    }
  });

  it("close() kills running commands, drops every connection, frees the port and its folder, and leaves no handle", async () => {
    // Handles and timers by type; other tests' timers may end meanwhile, so "no more than before" is the check.
    const resources = () => {
      const counts: Record<string, number> = {};
      for (const type of process.getActiveResourcesInfo()) counts[type] = (counts[type] ?? 0) + 1;
      return counts;
    };
    const before = resources();
    const leftovers = () => Object.entries(resources()).filter(([type, count]) => count > (before[type] ?? 0));
    const doomed = await startTestServer();
    const doomedClient = await connect(doomed);
    const lost = closed(doomedClient);
    const channel = await open(doomedClient, "echo $PPID $$; sleep 300");
    const [sessionPid = 0, shellPid = 0] = (await waitForOutput(channel, "\n")).trim().split(" ").map(Number);
    doomed.faults.stallHandshake = true;
    const stalled = tcpConnect(doomed.port, doomed.host);
    stalled.on("error", () => {});
    const stalledClosed = new Promise((resolve) => stalled.once("close", resolve));
    await eventually(() => doomed.connections === 2);
    expect(doomed.runningCommands).toBe(1);

    await doomed.close();
    await doomed.close();
    await lost;
    await stalledClosed;
    expect(alive(shellPid)).toBe(false);
    expect(alive(sessionPid)).toBe(false);
    expect(doomed.runningCommands).toBe(0);
    expect(doomed.connections).toBe(0);
    expect(existsSync(doomed.dir)).toBe(false);
    const refused = await new Promise<string>((resolve) => {
      const probe = tcpConnect(doomed.port, doomed.host);
      probe.on("connect", () => resolve("connected"));
      probe.on("error", (error: NodeJS.ErrnoException) => resolve(error.code ?? "error"));
    });
    expect(refused).toBe("ECONNREFUSED");
    await eventually(() => leftovers().length === 0);
    expect(leftovers()).toEqual([]);
  });
});

describe("startTestServer with the Node session helper (for machines without Perl)", () => {
  let server: TestServer;
  let client: Client;

  beforeAll(async () => {
    server = await startTestServer({ sessionHelper: "node" });
    client = await connect(server);
  });

  afterAll(async () => {
    client?.end();
    await server?.close();
  });

  it("runs commands with their exit code, stderr, env and stdin", async () => {
    const channel = await open(client, 'cat; echo "$TUNNEL_VALUE" >&2; exit 3', { env: { TUNNEL_VALUE: "from env" } });
    const result = collect(channel);
    channel.end("from stdin\n");
    expect(await result).toEqual({ code: 3, signal: null, stdout: "from stdin\n", stderr: "from env\n" });
  });

  it("reports death by a signal, and delivers signal requests to the command's process group", async () => {
    expect(await run(client, "kill -TERM $$")).toMatchObject({ code: null, signal: "SIGTERM" });
    const channel = await open(client, "sleep 300 & echo $!; wait");
    const sleeper = Number((await waitForOutput(channel, "\n")).trim());
    const result = collect(channel);
    channel.signal("KILL");
    expect(await result).toMatchObject({ code: null, signal: "SIGKILL" });
    expect(await eventually(() => !alive(sleeper))).toBe(true);
  });

  it("gives a pty on request", async () => {
    expect(await run(client, "tty && echo two", { pty: true })).toMatchObject({ code: 0, stdout: expect.stringMatching(/^\/dev\/pts\/\d+\r\ntwo\r\n$/) });
  });

  it("titles the session process like sshd's; killing it drops the connection", async () => {
    await expectSessionProcessLikeSshd(server);
  });
});
