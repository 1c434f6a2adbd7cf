import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startFaultProxy, startSshd, type FaultProxy, type Sshd } from "@tunnel-sh/testing";
import { ssh } from "./ssh-client.js";

describe("a fault proxy in front of a real sshd", () => {
  let sshd: Sshd;
  let proxy: FaultProxy;
  let knownHosts: string;

  beforeAll(async () => {
    sshd = await startSshd();
    proxy = await startFaultProxy({ target: { host: sshd.host, port: sshd.port } });
    knownHosts = join(sshd.dir, "known_hosts.proxy");
    writeFileSync(knownHosts, `[127.0.0.1]:${proxy.port} ${sshd.hostPublicKey}\n`);
  });

  afterAll(async () => {
    await proxy?.close();
    await sshd?.stop();
  });

  const through = (command: string, args: readonly string[] = []) => ssh(sshd, sshd.users.plain, command, "", knownHosts, { port: proxy.port, args });

  it("carries an ssh session", async () => {
    proxy.ok();
    expect(await through("echo via-proxy").done).toMatchObject({ code: 0, stdout: "via-proxy\n" });
  });

  it("black-holes a live session until the client's keepalive gives up", async () => {
    proxy.ok();
    const session = through("echo started; sleep 30; echo finished", ["-o", "ServerAliveInterval=1", "-o", "ServerAliveCountMax=2"]);
    await session.waitFor("started");
    proxy.blackhole();
    const result = await session.done;
    // Ended by the client's keepalive (its message), not by the command finishing behind the black hole.
    expect(result.code).toBe(255);
    expect(result.stderr).toContain("not responding");
    expect(result.stdout).not.toContain("finished");
    proxy.ok();
  }, 30_000);

  it("resets and closes live sessions", async () => {
    proxy.ok();
    const reset = through("echo started; sleep 30");
    await reset.waitFor("started");
    proxy.reset();
    expect((await reset.done).code).toBe(255);

    const closed = through("echo started; sleep 30");
    await closed.waitFor("started");
    proxy.fin();
    const result = await closed.done;
    expect(result.code).toBe(255);
    expect(result.stderr).toContain("closed by remote host");
  }, 30_000);
});
