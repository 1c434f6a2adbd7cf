import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  BUSYBOX_PATH,
  LOGIN_SHELLS,
  dropbearSupport,
  ensureShellAccounts,
  startDropbear,
  startSshd,
  type Dropbear,
  type LoginShell,
  type ShellUser,
  type Sshd,
} from "@tunnel-sh/testing";
import { runLocal } from "../src/run-local.js";
import { ssh } from "./ssh-client.js";

// Parses the same in every login shell: a single-quoted word made of characters none of them treats specially.
const PROBE = "exec /bin/sh -c 'echo shell=$0; echo path=$PATH; command -v perl || echo no-perl; find . -maxdepth 0 -printf x'";

describe("login-shell accounts", () => {
  let sshd: Sshd;
  let users: Readonly<Record<LoginShell, ShellUser>>;

  beforeAll(async () => {
    [sshd, users] = await Promise.all([startSshd({ usePam: false }), ensureShellAccounts()]);
  });

  afterAll(async () => {
    await sshd?.stop();
  });

  it.each(LOGIN_SHELLS)("logs %s in with that login shell and passwordless sudo", async (shell) => {
    const user = users[shell];
    expect(user.shell).toMatch(shell === "busybox" ? /\/busybox-login$/ : new RegExp(`/${shell}$`));
    expect(readFileSync("/etc/passwd", "utf8")).toContain(`:${user.shell}\n`);
    const result = await ssh(sshd, user, "id -un; sudo -n id -u").done;
    expect(result).toEqual({ code: 0, stdout: `${user.name}\n0\n`, stderr: "" });
  });

  it("gives the busybox account a userland of busybox applets only (no perl, no GNU find)", async () => {
    const result = await ssh(sshd, users.busybox, PROBE).done;
    expect(result.stdout).toContain(`path=${BUSYBOX_PATH}\n`);
    expect(result.stdout).toContain("no-perl\n");
    expect(result.stderr).toContain("unrecognized: -printf");
  });
});

describe("startDropbear", () => {
  let dropbear: Dropbear;
  let users: Readonly<Record<LoginShell, ShellUser>>;

  beforeAll(async () => {
    expect(dropbearSupport()).toEqual({ available: true });
    [dropbear, users] = await Promise.all([startDropbear(), ensureShellAccounts()]);
  });

  afterAll(async () => {
    await dropbear?.stop();
  });

  it("serves the test accounts over a loopback port with a pinned ed25519 host key", async () => {
    expect(dropbear.knownHostsLine).toBe(`[127.0.0.1]:${dropbear.port} ${dropbear.hostPublicKey}`);
    const result = await ssh(dropbear as Sshd, dropbear.users.sudo, "id -un; sudo -n id -u").done;
    expect(result).toMatchObject({ code: 0, stdout: "tunnel_sudo\n0\n" });
  });

  it("lets a fish user in (its shell is listed in /etc/shells)", async () => {
    const result = await ssh(dropbear as Sshd, users.fish, PROBE).done;
    expect(result.stdout).toMatch(/^shell=\/bin\/sh\n/);
    expect(result.code).toBe(0);
  });

  it("does not make a no-pty session command a process-group leader", async () => {
    const result = await ssh(dropbear as Sshd, dropbear.users.plain, "exec /bin/sh -c 'echo $$ $(ps -o pgid= -p $$)'").done;
    const [pid, pgid] = result.stdout.trim().split(/\s+/);
    expect(pid).toMatch(/^\d+$/);
    expect(pgid).not.toBe(pid);
  });
});

describe("startSshd({ lockedDown: true })", () => {
  let sshd: Sshd;

  beforeAll(async () => {
    sshd = await startSshd({ lockedDown: true });
  });

  afterAll(async () => {
    await sshd?.stop();
  });

  it("allows one session per connection and refuses a pty and the sftp subsystem, but runs commands", async () => {
    const settings = await runLocal("/usr/sbin/sshd", ["-T", "-f", join(sshd.dir, "sshd_config")]);
    expect(settings.stdout).toMatch(/^maxsessions 1$/m);
    expect(settings.stdout).toMatch(/^permittty no$/m);
    expect(settings.stdout).not.toMatch(/^subsystem /m);
    expect(await ssh(sshd, sshd.users.plain, "echo ran").done).toEqual({ code: 0, stdout: "ran\n", stderr: "" });
    const pty = await ssh(sshd, sshd.users.plain, "tty", "", sshd.knownHostsPath, { args: ["-tt"] }).done;
    expect(pty.stderr).toContain("PTY allocation request failed");
    const sftp = await ssh(sshd, sshd.users.plain, "sftp", "", sshd.knownHostsPath, { args: ["-s"] }).done;
    expect(sftp.code).not.toBe(0);
    expect(sftp.stderr).toMatch(/subsystem request failed/i);
  });
});
