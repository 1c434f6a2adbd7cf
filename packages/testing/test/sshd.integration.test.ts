import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { remoteProcesses, sshdSupport, startSshd, type Sshd } from "@tunnel-sh/testing";
import { ssh } from "./ssh-client.js";
import { isAlive } from "../src/process-table.js";

function portAnswers(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, "127.0.0.1");
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}

describe("startSshd", () => {
  let sshd: Sshd;

  beforeAll(async () => {
    sshd = await startSshd();
  });

  afterAll(async () => {
    await sshd?.stop();
  });

  it("describes a running server on a loopback port with an ed25519 host key", () => {
    expect(sshdSupport()).toEqual({ available: true });
    expect(sshd.host).toBe("127.0.0.1");
    expect(sshd.port).toBeGreaterThan(0);
    expect(sshd.hostPublicKey).toMatch(/^ssh-ed25519 AAAA\S+$/);
    expect(sshd.knownHostsLine).toBe(`[127.0.0.1]:${sshd.port} ${sshd.hostPublicKey}`);
    expect(readFileSync(sshd.knownHostsPath, "utf8").trim()).toBe(sshd.knownHostsLine);
    expect(isAlive(sshd.pid)).toBe(true);
    expect(readFileSync(sshd.logPath, "utf8")).toContain(`Server listening on 127.0.0.1 port ${sshd.port}`);
  });

  it("lets the plain user in with a bash login shell and no sudo", async () => {
    const result = await ssh(sshd, sshd.users.plain, 'id -un; getent passwd "$(id -un)" | cut -d: -f7; sudo -n true').done;
    expect(result.stdout).toBe("tunnel_plain\n/bin/bash\n");
    expect(result.code).toBe(1);
  });

  it("gives the sudo user passwordless sudo", async () => {
    const result = await ssh(sshd, sshd.users.sudo, "sudo -n id -u; sudo -n -u tunnel_other id -un").done;
    expect(result).toMatchObject({ code: 0, stdout: "0\ntunnel_other\n" });
  });

  it("gives the pwsudo user sudo that takes its password on stdin", async () => {
    const user = sshd.users.pwsudo;
    const refused = await ssh(sshd, user, "sudo -n true").done;
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain("a password is required");
    const result = await ssh(sshd, user, "sudo -S -p __PROMPT__ id -u", `${user.password}\n`).done;
    expect(result).toMatchObject({ code: 0, stdout: "0\n" });
    expect(result.stderr).toContain("__PROMPT__");
    expect(result.stderr).not.toContain(user.password);
  });

  it("lets the other user in", async () => {
    const result = await ssh(sshd, sshd.users.other, "id -un").done;
    expect(result).toMatchObject({ code: 0, stdout: "tunnel_other\n" });
  });

  it("refuses a client whose known_hosts holds another key", async () => {
    const other = await startSshd();
    try {
      const wrongKey = join(other.dir, "known_hosts.wrong");
      writeFileSync(wrongKey, `[127.0.0.1]:${other.port} ${sshd.hostPublicKey}\n`);
      const result = await ssh(other, other.users.plain, "true", "", wrongKey).done;
      expect(result.code).toBe(255);
      expect(result.stderr).toContain("REMOTE HOST IDENTIFICATION HAS CHANGED");
      expect(result.stderr).toContain("Host key verification failed");
    } finally {
      await other.stop();
    }
  });

  it("lists a user's processes with remoteProcesses", async () => {
    const run = ssh(sshd, sshd.users.other, "sleep 30 & echo pid=$!; wait $!");
    const pid = Number(/pid=(\d+)/.exec(await run.waitFor("\n"))?.[1]);
    const processes = await remoteProcesses("tunnel_other");
    expect(processes).toContainEqual(expect.objectContaining({ pid, args: "sleep 30" }));
    expect(await remoteProcesses("tunnel_plain")).not.toContainEqual(expect.objectContaining({ pid }));
    process.kill(pid, "SIGKILL");
    expect((await run.done).code).toBe(137);
  });

  it("writes sshd_config from the options, extra lines first and replacing defaults", async () => {
    const custom = await startSshd({
      maxSessions: 3,
      usePam: false,
      extraConfig: ["MaxStartups 2", "LoginGraceTime 7", "Match User tunnel_other", "ForceCommand echo forced"],
    });
    try {
      const config = readFileSync(`${custom.dir}/sshd_config`, "utf8");
      expect(config.split("\n").slice(0, 2)).toEqual(["MaxStartups 2", "LoginGraceTime 7"]);
      expect(config.match(/^MaxStartups/gm)).toHaveLength(1);
      expect(config).toContain("MaxSessions 3\n");
      expect(config).toContain("UsePAM no\n");
      expect(config.trimEnd().split("\n").slice(-2)).toEqual(["Match User tunnel_other", "ForceCommand echo forced"]);
      const result = await ssh(custom, custom.users.plain, "echo ok").done;
      expect(result).toMatchObject({ code: 0, stdout: "ok\n" });
      expect(await ssh(custom, custom.users.other, "echo ok").done).toMatchObject({ code: 0, stdout: "forced\n" });
    } finally {
      await custom.stop();
    }
  });
});

describe("an sshd's lifecycle", () => {
  it("restarts on the same port with the same host key, keeping open sessions", async () => {
    const sshd = await startSshd();
    try {
      const before = { pid: sshd.pid, port: sshd.port, key: sshd.hostPublicKey };
      const session = ssh(sshd, sshd.users.plain, "echo started; read line; echo got-$line");
      await session.waitFor("started");
      await sshd.restart();
      expect(sshd.pid).not.toBe(before.pid);
      expect(isAlive(before.pid)).toBe(false);
      expect({ port: sshd.port, key: sshd.hostPublicKey }).toEqual({ port: before.port, key: before.key });
      const after = await ssh(sshd, sshd.users.plain, "echo again").done;
      expect(after).toMatchObject({ code: 0, stdout: "again\n" });
      // the session opened before the restart still runs (stdin was closed: `read` got EOF)
      expect(await session.done).toMatchObject({ stdout: "started\ngot-\n" });
    } finally {
      await sshd.stop();
    }
  });

  it("crash drops every session and kills their processes; restart brings the server back", async () => {
    const sshd = await startSshd();
    try {
      const session = ssh(sshd, sshd.users.plain, "sleep 60 & echo pid=$!; wait; echo finished");
      const pid = Number(/pid=(\d+)/.exec(await session.waitFor("\n"))?.[1]);
      expect(isAlive(pid)).toBe(true);
      const listener = sshd.pid;
      await sshd.crash();
      const result = await session.done;
      expect(result.code).toBe(255);
      expect(result.stdout).not.toContain("finished");
      expect(isAlive(pid)).toBe(false);
      expect(isAlive(listener)).toBe(false);
      expect(await portAnswers(sshd.port)).toBe(false);
      await sshd.restart();
      expect(await ssh(sshd, sshd.users.plain, "echo back").done).toMatchObject({ code: 0, stdout: "back\n" });
    } finally {
      await sshd.stop();
    }
  });

  it("stop leaves no process of the instance, even sessions that outlived a restart, and removes its folder", async () => {
    const sshd = await startSshd();
    const first = ssh(sshd, sshd.users.plain, "sleep 60 & echo pid=$!; wait");
    const firstPid = Number(/pid=(\d+)/.exec(await first.waitFor("\n"))?.[1]);
    const firstListener = sshd.pid;
    await sshd.restart();
    const second = ssh(sshd, sshd.users.plain, "sleep 60 & echo pid=$!; wait");
    const secondPid = Number(/pid=(\d+)/.exec(await second.waitFor("\n"))?.[1]);
    const sessionPids = (await remoteProcesses("tunnel_plain")).map((entry) => entry.pid);
    expect(sessionPids).toEqual(expect.arrayContaining([firstPid, secondPid]));

    await sshd.stop();
    for (const pid of [firstListener, sshd.pid, firstPid, secondPid]) expect(isAlive(pid)).toBe(false);
    expect(existsSync(sshd.dir)).toBe(false);
    expect(await portAnswers(sshd.port)).toBe(false);
    expect((await first.done).code).toBe(255);
    expect((await second.done).code).toBe(255);
    await sshd.stop();
  });

  it("starts several servers at once on different ports", async () => {
    const servers = await Promise.all([startSshd(), startSshd(), startSshd()]);
    try {
      expect(new Set(servers.map((server) => server.port)).size).toBe(3);
      const results = await Promise.all(servers.map((server) => ssh(server, server.users.plain, "echo up").done));
      for (const result of results) expect(result).toMatchObject({ code: 0, stdout: "up\n" });
    } finally {
      await Promise.all(servers.map((server) => server.stop()));
    }
  });
});
