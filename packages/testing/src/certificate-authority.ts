/**
 * A throwaway SSH certificate authority and ssh-agent for tests of certificate login, host certificates and agent
 * forwarding against a real sshd.
 *
 * The CA is an ed25519 key made with `ssh-keygen` in a private temp folder; certificates are signed with
 * `ssh-keygen -s`, as an organisation's CA (Vault, Teleport, step-ca) would sign them.
 */
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { chmod, mkdtemp, readFile, rename, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { runLocal } from "./run-local.js";

/** A client key pair made for a test, with the certificates signed for it. */
export interface CertificateKey {
  /** The private key (no passphrase), mode 0600. */
  readonly privateKeyPath: string;
  /** `<privateKeyPath>.pub`. */
  readonly publicKeyPath: string;
}

export interface SignOptions {
  /** Certificate identity (`-I`). Default `"tunnel-test"`. */
  readonly identity?: string;
  /** Principals (`-n`): user names for a user certificate, host names for a host certificate. */
  readonly principals: readonly string[];
  /**
   * Validity interval (`-V`), in ssh-keygen's syntax: `"-5m:+1h"`, `"20200101:20200102"` (long expired).
   * Default `"-5m:+1h"`.
   */
  readonly validity?: string;
  /** Where to write the certificate. Default `<key>-cert.pub` beside the public key. */
  readonly certificatePath?: string;
}

export interface CertificateAuthority {
  /** Private folder holding the CA key and everything made with it; removed by `remove()`. */
  readonly dir: string;
  /** The CA's private key. */
  readonly caKeyPath: string;
  /** `ssh-ed25519 AAAA...` of the CA: the `TrustedUserCAKeys` line and the key of a `@cert-authority` line. */
  readonly caPublicKey: string;
  /** A file holding `caPublicKey`, for sshd's `TrustedUserCAKeys`. */
  readonly caPublicKeyPath: string;
  /** A new key pair (`ed25519`, or `rsa` with 2048 bits) in the CA's folder, named `name`. */
  createKey(name: string, type: "ed25519" | "rsa"): Promise<CertificateKey>;
  /** Sign a user public key; returns the certificate's path (default `<key>-cert.pub`). */
  signUserKey(publicKeyPath: string, options: SignOptions): Promise<string>;
  /** Sign a host public key (`-h`); returns the certificate's path. */
  signHostKey(publicKeyPath: string, options: SignOptions): Promise<string>;
  /** Remove the folder. Idempotent. */
  remove(): Promise<void>;
}

async function keygen(args: readonly string[]): Promise<void> {
  const result = await runLocal("ssh-keygen", args);
  if (result.code !== 0) throw new Error(`ssh-keygen ${args.join(" ")} failed: ${result.stderr.trim()}`);
}

/** Make a new CA in a private temp folder. */
export async function createCertificateAuthority(): Promise<CertificateAuthority> {
  const dir = await mkdtemp(join(tmpdir(), "tunnel-ca-"));
  await chmod(dir, 0o755); // sshd reads TrustedUserCAKeys as root, the test users' keys are read by the tests
  const caKeyPath = join(dir, "ca");
  await keygen(["-q", "-t", "ed25519", "-N", "", "-C", "tunnel-test-ca", "-f", caKeyPath]);
  const caPublicKey = (await readFile(`${caKeyPath}.pub`, "utf8")).trim().split(" ").slice(0, 2).join(" ");
  const sign = async (publicKeyPath: string, options: SignOptions, host: boolean): Promise<string> => {
    const certificatePath = options.certificatePath ?? publicKeyPath.replace(/\.pub$/, "") + "-cert.pub";
    const args = ["-q", "-s", caKeyPath, "-I", options.identity ?? "tunnel-test", "-n", options.principals.join(",")];
    args.push("-V", options.validity ?? "-5m:+1h");
    if (host) args.push("-h");
    await keygen([...args, publicKeyPath]);
    // ssh-keygen always writes <key>-cert.pub beside the public key.
    const written = publicKeyPath.replace(/\.pub$/, "") + "-cert.pub";
    if (written !== certificatePath) await rename(written, certificatePath);
    return certificatePath;
  };
  return {
    dir,
    caKeyPath,
    caPublicKey,
    caPublicKeyPath: `${caKeyPath}.pub`,
    async createKey(name, type) {
      if (!/^[\w.-]+$/.test(name)) throw new Error(`key name "${name}" must be a plain file name`);
      const privateKeyPath = join(dir, name);
      await keygen(["-q", "-t", type, ...(type === "rsa" ? ["-b", "2048"] : []), "-N", "", "-C", name, "-f", privateKeyPath]);
      return { privateKeyPath, publicKeyPath: `${privateKeyPath}.pub` };
    },
    signUserKey: (publicKeyPath, options) => sign(publicKeyPath, options, false),
    signHostKey: (publicKeyPath, options) => sign(publicKeyPath, options, true),
    remove: () => rm(dir, { recursive: true, force: true }),
  };
}

/** An `ssh-agent` run by a test. */
export interface SshAgent {
  /** The agent's socket: `SSH_AUTH_SOCK`, or the transports' `agent` option. */
  readonly socketPath: string;
  readonly pid: number;
  /** Load a private key (and the `-cert.pub` beside it, as ssh-add does). */
  add(privateKeyPath: string): Promise<void>;
  /** `ssh-add -l` output: one line per key the agent holds. */
  list(): Promise<string>;
  /** Kill the agent and remove its socket folder. Idempotent. */
  stop(): Promise<void>;
}

/** Start an `ssh-agent -D` on a socket in a private temp folder. */
export async function startSshAgent(): Promise<SshAgent> {
  const dir = await mkdtemp(join(tmpdir(), "tunnel-agent-"));
  const socketPath = join(dir, "agent.sock");
  const child = spawn("ssh-agent", ["-D", "-a", socketPath], { stdio: ["ignore", "ignore", "ignore"] });
  child.unref();
  const pid = child.pid;
  if (pid === undefined) throw new Error("could not start ssh-agent");
  const exitHook = (): void => {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // gone
    }
  };
  process.once("exit", exitHook);
  const deadline = Date.now() + 10_000;
  while (!existsSync(socketPath)) {
    if (child.exitCode !== null || Date.now() > deadline) {
      exitHook();
      throw new Error("ssh-agent did not create its socket");
    }
    await sleep(20);
  }
  const env = { ...process.env, SSH_AUTH_SOCK: socketPath };
  let stopped: Promise<void> | undefined;
  return {
    socketPath,
    pid,
    async add(privateKeyPath) {
      const result = await runLocal("ssh-add", [privateKeyPath], { env });
      if (result.code !== 0) throw new Error(`ssh-add failed: ${result.stderr.trim()}`);
    },
    async list() {
      const result = await runLocal("ssh-add", ["-l"], { env });
      return result.stdout;
    },
    stop() {
      stopped ??= (async () => {
        process.removeListener("exit", exitHook);
        exitHook();
        await rm(dir, { recursive: true, force: true });
      })();
      return stopped;
    },
  };
}
