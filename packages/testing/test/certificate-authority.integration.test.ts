import { spawn } from "node:child_process";
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  createCertificateAuthority,
  startSshAgent,
  startSshd,
  sshdSupport,
  type CertificateAuthority,
  type CertificateKey,
  type Sshd,
  type SshAgent,
} from "@tunnel-sh/testing";

/** The system ssh with only the given arguments (no ssh_config), BatchMode on. */
function ssh(sshd: Sshd, user: string, args: readonly string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(
    "ssh",
    [
      "-F",
      "/dev/null",
      "-o",
      "BatchMode=yes",
      "-o",
      "GlobalKnownHostsFile=/dev/null",
      "-o",
      "StrictHostKeyChecking=yes",
      ...args,
      "-p",
      String(sshd.port),
      `${user}@${sshd.host}`,
      "echo cert-login-ok",
    ],
    { stdio: ["ignore", "pipe", "pipe"], env: { PATH: process.env["PATH"], ...env } },
  );
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  return new Promise((resolve) => child.on("close", (code) => resolve({ code, stdout, stderr })));
}

describe.runIf(sshdSupport().available)("a certificate authority, a CA-only sshd and an ssh-agent", () => {
  let ca: CertificateAuthority;
  let sshd: Sshd;
  let agent: SshAgent;
  let key: CertificateKey;
  let knownHosts: string;

  beforeAll(async () => {
    ca = await createCertificateAuthority();
    sshd = await startSshd({
      usePam: false,
      extraConfig: [`TrustedUserCAKeys ${ca.caPublicKeyPath}`, "AuthorizedKeysFile none", "PasswordAuthentication no", "KbdInteractiveAuthentication no"],
      hostCertificate: { authority: ca },
    });
    key = await ca.createKey("user-ed25519", "ed25519");
    agent = await startSshAgent();
    knownHosts = join(ca.dir, "known_hosts");
    writeFileSync(knownHosts, `@cert-authority [127.0.0.1]:${sshd.port} ${ca.caPublicKey}\n`);
  });

  afterAll(async () => {
    await agent?.stop();
    await sshd?.stop();
    await ca?.remove();
  });

  it("lets a key in with a valid certificate for the user, and the host certificate verifies against the CA", async () => {
    await ca.signUserKey(key.publicKeyPath, { principals: [sshd.users.plain.name] });
    const result = await ssh(sshd, sshd.users.plain.name, ["-i", key.privateKeyPath, "-o", "IdentitiesOnly=yes", "-o", `UserKnownHostsFile=${knownHosts}`]);
    expect(result).toMatchObject({ code: 0, stdout: "cert-login-ok\n" });
  });

  it("refuses the bare key (no authorized_keys), an expired certificate and one for another principal", async () => {
    const bare = await ca.createKey("bare", "ed25519");
    const options = (file: string) => ["-i", file, "-o", "IdentitiesOnly=yes", "-o", `UserKnownHostsFile=${knownHosts}`];
    expect((await ssh(sshd, sshd.users.plain.name, options(bare.privateKeyPath))).stderr).toMatch(/Permission denied/);
    const expired = await ca.createKey("expired", "ed25519");
    await ca.signUserKey(expired.publicKeyPath, { principals: [sshd.users.plain.name], validity: "20200101:20200102" });
    expect((await ssh(sshd, sshd.users.plain.name, options(expired.privateKeyPath))).stderr).toMatch(/Permission denied/);
    const other = await ca.createKey("other", "ed25519");
    await ca.signUserKey(other.publicKeyPath, { principals: ["someone-else"] });
    expect((await ssh(sshd, sshd.users.plain.name, options(other.privateKeyPath))).stderr).toMatch(/Permission denied/);
  });

  it("starts an agent that holds the key with its certificate and logs in through it", async () => {
    const loaded = await ca.createKey("agent-key", "ed25519");
    await ca.signUserKey(loaded.publicKeyPath, { principals: [sshd.users.plain.name] });
    await agent.add(loaded.privateKeyPath);
    expect(await agent.list()).toMatch(/ED25519-CERT/);
    const result = await ssh(sshd, sshd.users.plain.name, ["-o", `UserKnownHostsFile=${knownHosts}`], { SSH_AUTH_SOCK: agent.socketPath });
    expect(result).toMatchObject({ code: 0, stdout: "cert-login-ok\n" });
  });

  it("a host certificate from another CA does not verify", async () => {
    const otherCa = await createCertificateAuthority();
    try {
      const file = join(otherCa.dir, "known_hosts");
      writeFileSync(file, `@cert-authority [127.0.0.1]:${sshd.port} ${otherCa.caPublicKey}\n`);
      const result = await ssh(sshd, sshd.users.plain.name, ["-i", key.privateKeyPath, "-o", "IdentitiesOnly=yes", "-o", `UserKnownHostsFile=${file}`]);
      expect(result.code).toBe(255);
      expect(result.stderr).toMatch(/Host key verification failed/);
    } finally {
      await otherCa.remove();
    }
  });
});

describe("signing options", () => {
  it("a misspelt option is a ConfigError naming it, and no certificate is written", async () => {
    const ca = await createCertificateAuthority();
    try {
      const key = await ca.createKey("typo", "ed25519");
      const typo = { principals: ["deploy"], validty: "20200101:20200102" } as never;
      await expect(ca.signUserKey(key.publicKeyPath, typo)).rejects.toMatchObject({
        code: "CONFIG",
        field: "validty",
        message: expect.stringContaining("(did you mean validity?)"),
      });
      await expect(ca.signHostKey(key.publicKeyPath, typo)).rejects.toMatchObject({ code: "CONFIG", field: "validty" });
      expect(existsSync(key.publicKeyPath.replace(/\.pub$/, "-cert.pub"))).toBe(false);
    } finally {
      await ca.remove();
    }
  });
});
