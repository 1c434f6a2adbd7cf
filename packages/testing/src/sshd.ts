/**
 * A throwaway real OpenSSH sshd on a free loopback port, for tests that must talk to the real thing.
 *
 * Each instance has its own folder (config, ed25519 host key, log) and runs `sshd -D` as a child of the test
 * process. The test accounts (see `test-users.ts`) are shared by every instance on the machine.
 */
import { readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { CertificateAuthority } from "./certificate-authority.js";
import { runLocal } from "./run-local.js";
import { ensureTestAccounts } from "./test-users.js";
import { executable, findProgram, serverSupport, type ServerSupport } from "./server-support.js";
import { onFreePort, ownedFolder, sweepStaleFolders } from "./server-process.js";
import { SSHD_PATH, compatibilityLines, renderConfig, validateSshdOptions } from "./sshd-config.js";
import { PortTakenError, SshdInstance } from "./sshd-instance.js";

export interface SshdUser {
  readonly name: string;
  readonly password: string;
}

export interface StartSshdOptions {
  /** sshd's MaxSessions: channels per connection. Default 10. */
  readonly maxSessions?: number;
  /** sshd's UsePAM. Default true (keyboard-interactive needs it); false makes wrong passwords fail fast. */
  readonly usePam?: boolean;
  /**
   * Extra sshd_config lines, placed first. sshd keeps the first value of most keywords but the last of a few
   * (MaxStartups), so a default line with the same keyword is removed: `["MaxStartups 2"]` really means 2.
   * Lines from the first `Match` on are conditional blocks and go at the end instead.
   */
  readonly extraConfig?: readonly string[];
  /** Serve the `sftp` subsystem. Default true; false leaves out the `Subsystem` line (the request then fails). */
  readonly sftp?: boolean;
  /**
   * A locked-down server as hardened hosts run it: `MaxSessions 1` (no second channel beside a running command),
   * `PermitTTY no` and no SFTP subsystem. Overrides `maxSessions` and `sftp`.
   */
  readonly lockedDown?: boolean;
  /**
   * Sign the host key with this CA and present the certificate (sshd's `HostCertificate`). `principals` default to
   * `["127.0.0.1"]`, `validity` to `"-5m:+1h"` (ssh-keygen `-V` syntax). `keyType: "rsa"` adds an RSA host key
   * and certifies that one instead of the ed25519 key (which the server keeps presenting to clients that ask for it).
   */
  readonly hostCertificate?: {
    readonly authority: CertificateAuthority;
    readonly principals?: readonly string[];
    readonly validity?: string;
    readonly keyType?: "ed25519" | "rsa";
  };
}

export interface Sshd {
  /** Always `127.0.0.1`. */
  readonly host: string;
  readonly port: number;
  /** Private folder holding the config, host key, known_hosts file and log; removed by `stop()`. */
  readonly dir: string;
  /** `ssh-ed25519 AAAA...` */
  readonly hostPublicKey: string;
  /** `[127.0.0.1]:PORT ssh-ed25519 AAAA...` */
  readonly knownHostsLine: string;
  /** A file holding `knownHostsLine`. */
  readonly knownHostsPath: string;
  /**
   * With the `hostCertificate` option: the certificate (`ssh-ed25519-cert-v01@openssh.com AAAA...`) and the public
   * key it certifies (`ssh-ed25519 AAAA...` or `ssh-rsa AAAA...`), for `@revoked` lines.
   */
  readonly hostCertificate: { readonly certificate: string; readonly publicKey: string } | undefined;
  /** An ed25519 private key without passphrase, authorized for every test user. Readable by root only. */
  readonly clientKeyPath: string;
  readonly users: {
    /** `tunnel_plain`: /bin/bash, no sudo. */
    readonly plain: SshdUser;
    /** `tunnel_sudo`: sudo without a password. */
    readonly sudo: SshdUser;
    /** `tunnel_pwsudo`: sudo with its password. */
    readonly pwsudo: SshdUser;
    /** `tunnel_other`: an account to `sudo -u` to. */
    readonly other: SshdUser;
  };
  /** The listener's pid (a new one after `restart()`; 0 after `crash()` until `restart()`). */
  readonly pid: number;
  readonly logPath: string;
  /** Stop the listener and start it again: same port, same host key. Open sessions keep running. */
  restart(): Promise<void>;
  /** Kill the listener and every process under it: all sessions drop. `restart()` brings the server back. */
  crash(): Promise<void>;
  /** Kill everything this instance started and remove its folder. Idempotent. */
  stop(): Promise<void>;
}

export type SshdSupport = ServerSupport;

/**
 * Whether this machine can run a throwaway sshd: it needs root (to create the test accounts) and /usr/sbin/sshd.
 * When it cannot and `process.env.CI` is set, this throws: CI must run the suites that need sshd, never skip them.
 */
export function sshdSupport(): SshdSupport {
  let reason: string | undefined;
  if (process.platform !== "linux") reason = "a throwaway sshd needs Linux";
  else if (process.getuid?.() !== 0) reason = "a throwaway sshd needs root (it creates the test accounts)";
  else if (!executable(SSHD_PATH)) reason = `${SSHD_PATH} is missing (install openssh-server)`;
  else {
    const missing = REQUIRED_TOOLS.filter(([tool]) => !onPath(tool)).map(([tool, from]) => `${tool} (${from})`);
    if (missing.length > 0) reason = `missing ${missing.join(", ")}`;
  }
  return serverSupport("sshd", reason);
}

/** Programs the launcher runs, and the Debian package that brings each. */
const REQUIRED_TOOLS: ReadonlyArray<readonly [string, string]> = [
  ["ssh-keygen", "openssh-client"],
  ["ssh-keyscan", "openssh-client"],
  ["flock", "util-linux"],
  ["useradd", "passwd"],
  ["chpasswd", "passwd"],
  ["visudo", "sudo"],
];

function onPath(tool: string): boolean {
  return findProgram(tool, ["/usr/sbin", "/sbin", "/usr/bin", "/bin"]) !== undefined;
}

const INSTANCE_PREFIX = "tunnel-sshd-";

/** Start a throwaway sshd. Rejects (with the log's tail) when it does not answer with its host key in time. */
export async function startSshd(options: StartSshdOptions = {}): Promise<Sshd> {
  validateSshdOptions(options);
  const support = sshdSupport();
  if (!support.available) throw new Error(`cannot start sshd: ${support.reason}`);
  const accounts = await ensureTestAccounts();
  // A stale instance's listener runs from its own sshd_config.
  await sweepStaleFolders(INSTANCE_PREFIX, (entry, dir) => ` ${entry.args} `.includes(` -f ${join(dir, "sshd_config")} `));
  const dir = await ownedFolder(INSTANCE_PREFIX);
  try {
    const keyPath = join(dir, "ssh_host_ed25519_key");
    const keygen = await runLocal("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "tunnel-testing-host", "-f", keyPath]);
    if (keygen.code !== 0) throw new Error(`ssh-keygen failed: ${keygen.stderr.trim()}`);
    const hostPublicKey = (await readFile(`${keyPath}.pub`, "utf8")).trim().split(" ").slice(0, 2).join(" ");
    const extraLines = [...(await compatibilityLines())];
    let hostCertificate: Sshd["hostCertificate"];
    if (options.hostCertificate) {
      const { authority, principals = ["127.0.0.1"], validity = "-5m:+1h", keyType = "ed25519" } = options.hostCertificate;
      let certifiedPath = keyPath;
      if (keyType === "rsa") {
        certifiedPath = join(dir, "ssh_host_rsa_key");
        const rsa = await runLocal("ssh-keygen", ["-q", "-t", "rsa", "-b", "2048", "-N", "", "-C", "tunnel-testing-host", "-f", certifiedPath]);
        if (rsa.code !== 0) throw new Error(`ssh-keygen failed: ${rsa.stderr.trim()}`);
      }
      const certificatePath = await authority.signHostKey(`${certifiedPath}.pub`, { identity: "tunnel-testing-host", principals, validity });
      extraLines.push(`HostCertificate ${certificatePath}`);
      const firstTwo = (text: string) => text.trim().split(" ").slice(0, 2).join(" ");
      hostCertificate = { certificate: firstTwo(await readFile(certificatePath, "utf8")), publicKey: firstTwo(await readFile(`${certifiedPath}.pub`, "utf8")) };
    }
    return await onFreePort(
      async (port) => {
        const instance = new SshdInstance({ dir, port, hostPublicKey, clientKeyPath: accounts.clientKeyPath, users: accounts.users }, hostCertificate);
        await writeFile(join(dir, "sshd_config"), renderConfig(dir, port, options, extraLines), { mode: 0o600 });
        await writeFile(instance.knownHostsPath, `${instance.knownHostsLine}\n`);
        await instance.launch();
        return instance;
      },
      (error) => error instanceof PortTakenError,
    );
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
}
