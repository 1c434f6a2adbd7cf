/**
 * No secret in any process's argv or environment. While the library and the `tunnel` CLI run commands, scripts and
 * transfers with a sudo password, a login password and an encrypted key's passphrase, over both transports (the
 * openssh one with a ProxyCommand from `-F`), `/proc/<pid>/cmdline` and `/proc/<pid>/environ` of every process on
 * the machine are read every 20 ms. The only processes allowed to hold a secret are the ones the secret was given
 * to: this test process, and the CLI process whose environment the caller put the password variable into (the
 * kernel keeps a process's initial environment as it was given; what matters is that nothing it starts inherits it).
 */
import { spawn } from "node:child_process";
import { chmod, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Executor } from "@tunnel-sh/core";
import type { Transport } from "@tunnel-sh/core";
import { ConnectionPool, DefaultPoolConfig } from "@tunnel-sh/pool";
import { startSshd } from "@tunnel-sh/testing";
import type { Sshd } from "@tunnel-sh/testing";
import { OpenSshTransport } from "@tunnel-sh/transport-openssh";
import { Ssh2Transport } from "@tunnel-sh/transport-ssh2";
import { testExecutorConfig, TRANSPORTS } from "./support/transports.js";
import type { TransportName } from "./support/transports.js";

const CLI = resolve(import.meta.dirname, "../../packages/cli/dist/bin.js");

/**
 * Reads argv and environment of every process every 20 ms; keeps what holds a secret, except in `allowed` pids. The
 * commands below sleep a little, so each of their processes lives through several samples.
 */
function sampleProcesses(secrets: readonly string[], allowed: Set<number>) {
  const hits: string[] = [];
  let samples = 0;
  let running = true;
  const loop = (async () => {
    while (running) {
      const names = (await readdir("/proc").catch(() => [] as string[])).filter((name) => /^\d+$/.test(name) && !allowed.has(Number(name)));
      await Promise.all(
        names.map(async (name) => {
          for (const file of ["cmdline", "environ"]) {
            const holds = async () => {
              const text = await readFile(`/proc/${name}/${file}`, "utf8").catch(() => "");
              return secrets.some((secret) => text.includes(secret));
            };
            if (!(await holds())) continue;
            const argv = (await readFile(`/proc/${name}/cmdline`, "utf8").catch(() => "")).replace(/\0/g, " ");
            // The first read may predate an exec (a child between fork and exec still has its parent's environment):
            // read it again now that the command line was read, so that both belong to the same program.
            if (!(await holds())) continue;
            // Between fork and exec a child of the CLI still shows the CLI's command line and environment: look again
            // a moment later, when it runs its own program with the environment it was given (or is gone).
            if (argv.startsWith(`${process.execPath} ${CLI} `)) {
              await new Promise((resolveSleep) => setTimeout(resolveSleep, 50));
              if (!(await holds())) continue;
            }
            hits.push(`${file} of ${name}: ${argv.slice(0, 200)}`);
          }
        }),
      );
      samples++;
      await new Promise((resolveSleep) => setTimeout(resolveSleep, 20));
    }
  })();
  return {
    stop: async () => {
      running = false;
      await loop;
      return { hits, samples };
    },
  };
}

/** Run the built CLI with `env`; its own pid is added to `allowed` while it runs. */
function runCliProcess(
  args: readonly string[],
  env: NodeJS.ProcessEnv,
  allowed: Set<number>,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolveRun, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { env, stdio: ["ignore", "pipe", "pipe"] });
    if (child.pid !== undefined) allowed.add(child.pid);
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    child.on("error", reject);
    child.on("close", (code) => {
      if (child.pid !== undefined) allowed.delete(child.pid);
      resolveRun({ code, stdout, stderr });
    });
  });
}

const PROXY = `// stdin/stdout <-> TCP, for ProxyCommand
import { connect } from "node:net";
const socket = connect(Number(process.argv[3]), process.argv[2]);
process.stdin.pipe(socket);
socket.pipe(process.stdout);
socket.on("close", () => process.exit(0));
socket.on("error", () => process.exit(1));
`;

describe("no secret in any process's argv or environment", () => {
  let sshd: Sshd;
  let dir: string;
  let keysDir: string;
  const passphrase = `key-passphrase-${process.pid}-x7Qz`;

  beforeAll(async () => {
    // An encrypted key, authorized through a key file of this sshd instance only (the test accounts are shared).
    keysDir = await mkdtemp(join(tmpdir(), "tunnel-secret-keys-"));
    await chmod(keysDir, 0o755);
    const { execFileSync } = await import("node:child_process");
    execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", passphrase, "-C", "tunnel-encrypted", "-f", join(keysDir, "id_encrypted")]);
    await chmod(join(keysDir, "id_encrypted.pub"), 0o644);
    sshd = await startSshd({
      usePam: false,
      extraConfig: [`AuthorizedKeysFile .ssh/authorized_keys ${join(keysDir, "id_encrypted.pub")}`, "StrictModes no"],
    });
    dir = await mkdtemp(join(tmpdir(), "tunnel-secret-env-"));
    await writeFile(join(dir, "proxy.mjs"), PROXY);
    await writeFile(
      join(dir, "ssh_config"),
      [
        `Host web-1`,
        `  HostName ${sshd.host}`,
        `  Port ${sshd.port}`,
        `  User ${sshd.users.pwsudo.name}`,
        `  ProxyCommand ${process.execPath} ${join(dir, "proxy.mjs")} %h %p`,
        "",
      ].join("\n"),
    );
    await writeFile(join(dir, "payload.txt"), "payload\n");
    await writeFile(join(dir, "script.sh"), "#!/bin/sh\nsleep 0.3; id -un\n");
  });
  afterAll(async () => {
    await sshd?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
    if (keysDir) await rm(keysDir, { recursive: true, force: true });
  });

  it.each(TRANSPORTS)(
    "library and CLI over %s",
    async (name: TransportName) => {
      const sudoPassword = sshd.users.pwsudo.password;
      const loginPassword = sshd.users.pwsudo.password === sshd.users.plain.password ? "" : sshd.users.plain.password;
      const secrets = [sudoPassword, passphrase, ...(loginPassword ? [loginPassword] : [])];
      const allowed = new Set<number>([process.pid]);
      const pwsudo = { host: sshd.host, port: sshd.port, user: sshd.users.pwsudo.name };
      const plain = { host: sshd.host, port: sshd.port, user: sshd.users.plain.name };
      const sudo = { password: sudoPassword };
      const remote = (what: string) => `/tmp/tunnel-secret-env-${name}-${process.pid}-${what}`;

      // The library: ssh2 logs in with the encrypted key, openssh with the login password (its askpass helper).
      const transports: Transport[] =
        name === "ssh2"
          ? [
              new Ssh2Transport({
                identityFile: join(keysDir, "id_encrypted"),
                passphrase,
                knownHostsFile: sshd.knownHostsPath,
                configFile: false,
                agent: false,
              }),
              new Ssh2Transport({ password: loginPassword, knownHostsFile: sshd.knownHostsPath, configFile: false, agent: false }),
            ]
          : [
              new OpenSshTransport({
                password: loginPassword,
                options: { PubkeyAuthentication: "no" },
                knownHostsFile: sshd.knownHostsPath,
                configFile: "/dev/null",
              }),
            ];
      const pools = transports.map((transport) => new ConnectionPool(transport, DefaultPoolConfig()));
      const executors = pools.map((pool) => new Executor(pool, testExecutorConfig().with({ sudoTimeout: 10_000 })));

      const sampler = sampleProcesses(secrets, allowed);
      const outcomes: unknown[] = [];
      const settle = async (operation: Promise<unknown>) => outcomes.push(await operation.catch((error: unknown) => error));
      let observed: { hits: string[]; samples: number };
      try {
        for (const [index, executor] of executors.entries()) {
          // ssh2's first stack logs in with the encrypted key (authorized for every account); the others with a password.
          const as = name === "ssh2" && executor === executors[0] ? pwsudo : plain;
          await settle(executor.runCommand({ ...as, cmd: "sleep 0.3; echo ok" }));
          await settle(executor.runScript({ ...as, content: "#!/bin/sh\nsleep 0.3; echo script-ok" }));
          await settle(executor.transferFile({ ...as, direction: "upload", source: join(dir, "payload.txt"), destination: remote(`up-${index}`) }));
        }
        // sudo with its password: over ssh2 on the encrypted-key stack of the pwsudo account; over openssh on a stack of
        // that account with the test key.
        let sudoExecutor = executors[0] as Executor;
        if (name === "openssh") {
          const pool = new ConnectionPool(
            new OpenSshTransport({ identityFile: sshd.clientKeyPath, knownHostsFile: sshd.knownHostsPath, configFile: "/dev/null" }),
            DefaultPoolConfig(),
          );
          pools.push(pool);
          sudoExecutor = new Executor(pool, testExecutorConfig().with({ sudoTimeout: 10_000 }));
        }
        await settle(sudoExecutor.runCommand({ ...pwsudo, cmd: "sleep 0.3; id -u", sudo }));
        await settle(sudoExecutor.runScript({ ...pwsudo, content: "sleep 0.3; id -un", sudo }));
        await settle(
          sudoExecutor.transferFile({
            ...pwsudo,
            direction: "upload",
            source: join(dir, "payload.txt"),
            destination: remote("sudo"),
            owner: sshd.users.other.name,
            sudo,
          }),
        );

        // The CLI, the sudo password in a variable of its environment.
        const env = { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: process.env.HOME ?? "/root", TUNNEL_SECRET_SUDO: sudoPassword };
        const access = [
          "--transport",
          name,
          "-F",
          join(dir, "ssh_config"),
          "-I",
          sshd.clientKeyPath,
          "--known-hosts",
          sshd.knownHostsPath,
          "-H",
          "web-1",
          "--sudo-pass-env",
          "TUNNEL_SECRET_SUDO",
        ];
        outcomes.push(await runCliProcess(["run", ...access, "--", "sleep 0.3; id -u"], env, allowed));
        outcomes.push(await runCliProcess(["script", ...access, join(dir, "script.sh")], env, allowed));
        outcomes.push(await runCliProcess(["put", ...access, "--chown", sshd.users.other.name, join(dir, "payload.txt"), remote("cli")], env, allowed));
      } finally {
        observed = await sampler.stop();
        for (const pool of pools) await pool.close();
        for (const what of ["up-0", "up-1", "sudo", "cli"]) await rm(remote(what), { force: true });
      }

      // Every run did its work, so the secrets really went through each path.
      const count = executors.length * 3;
      for (let index = 0; index < count; index += 3) {
        expect(outcomes[index]).toMatchObject({ stdout: "ok\n" });
        expect(outcomes[index + 1]).toMatchObject({ stdout: "script-ok\n" });
        expect(outcomes[index + 2]).toMatchObject({ files: 1 });
      }
      expect(outcomes[count]).toMatchObject({ stdout: "0\n" });
      expect(outcomes[count + 1]).toMatchObject({ stdout: "root\n" });
      expect(outcomes[count + 2]).toMatchObject({ files: 1 });
      expect(outcomes[count + 3]).toMatchObject({ code: 0, stdout: "web-1 | 0\n" });
      expect(outcomes[count + 4]).toMatchObject({ code: 0, stdout: "web-1 | root\n" });
      expect(outcomes[count + 5]).toMatchObject({ code: 0 });
      expect(observed.samples).toBeGreaterThan(10);
      expect(observed.hits).toEqual([]);
    },
    180_000,
  );
});
