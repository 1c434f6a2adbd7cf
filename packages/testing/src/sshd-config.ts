/**
 * From `StartSshdOptions` to the `sshd_config` a throwaway sshd runs with: the options checked before anything is
 * created, the defaults the tests rely on, the caller's extra lines and the lines that keep newer servers behaving
 * like the ones the tests were written for.
 */
import { join } from "node:path";
import { ConfigError, describeOptionValue, rejectUnknownOptions } from "@tunnel-sh/core";
import { runLocal } from "./run-local.js";
import type { StartSshdOptions } from "./sshd.js";

export const SSHD_PATH = "/usr/sbin/sshd";

const SSHD_OPTIONS = Object.keys({ maxSessions: true, usePam: true, extraConfig: true, hostCertificate: true, sftp: true, lockedDown: true } satisfies Record<
  keyof StartSshdOptions,
  true
>);

/** Throws `ConfigError` for an unknown option or a wrong value, before anything is created. */
export function validateSshdOptions(options: StartSshdOptions): void {
  rejectUnknownOptions(options, SSHD_OPTIONS, "startSshd");
  const values = options as Record<string, unknown>;
  if (options.maxSessions !== undefined && !(Number.isInteger(options.maxSessions) && options.maxSessions >= 1)) {
    throw new ConfigError("maxSessions", `must be a positive integer, got ${describeOptionValue(values.maxSessions)}`);
  }
  if (options.usePam !== undefined && typeof options.usePam !== "boolean") {
    throw new ConfigError("usePam", `must be true or false, got ${describeOptionValue(values.usePam)}`);
  }
  for (const flag of ["sftp", "lockedDown"] as const) {
    if (options[flag] !== undefined && typeof options[flag] !== "boolean") {
      throw new ConfigError(flag, `must be true or false, got ${describeOptionValue(values[flag])}`);
    }
  }
  const certificate = values.hostCertificate as { authority?: { signHostKey?: unknown } } | undefined;
  if (certificate !== undefined && (typeof certificate !== "object" || certificate === null || typeof certificate.authority?.signHostKey !== "function")) {
    throw new ConfigError("hostCertificate", "must be { authority } with a CA from createCertificateAuthority()");
  }
  const certifiedType = (values.hostCertificate as { keyType?: unknown } | undefined)?.keyType;
  if (certifiedType !== undefined && certifiedType !== "ed25519" && certifiedType !== "rsa") {
    throw new ConfigError("hostCertificate.keyType", `must be "ed25519" or "rsa", got ${describeOptionValue(certifiedType)}`);
  }
  const extra: unknown = options.extraConfig;
  if (extra !== undefined && (!Array.isArray(extra) || extra.some((line) => typeof line !== "string" || /[\r\n]/.test(line)))) {
    throw new ConfigError("extraConfig", "must be a list of sshd_config lines (strings without line breaks)");
  }
}

let compatibility: Promise<string[]> | undefined;

/** Lines that keep newer servers behaving like the ones the tests were written for. */
export function compatibilityLines(): Promise<string[]> {
  compatibility ??= runLocal(SSHD_PATH, ["-V"]).then((result) => {
    const match = /OpenSSH_(\d+)\.(\d+)/.exec(result.stderr + result.stdout);
    const version = match ? Number(match[1]) * 100 + Number(match[2]) : 0;
    // 9.8 added penalties for sources that fail often, which a fault suite does on purpose.
    return version >= 908 ? ["PerSourcePenalties no"] : [];
  });
  return compatibility;
}

/** The `sshd_config` of the instance in `dir` listening on `port`; `extraLines` go first, like `extraConfig`. */
export function renderConfig(dir: string, port: number, options: StartSshdOptions, extraLines: readonly string[]): string {
  // Lines from the first `Match` on form conditional blocks, which run to the end of the file: they go last.
  const lines = [...(options.lockedDown ? ["PermitTTY no"] : []), ...(options.extraConfig ?? [])];
  const firstMatch = lines.findIndex((line) => keyword(line) === "match");
  const extra = [...(firstMatch === -1 ? lines : lines.slice(0, firstMatch)), ...extraLines];
  const blocks = firstMatch === -1 ? [] : lines.slice(firstMatch);
  const overridden = new Set(extra.map((line) => keyword(line)).filter((word) => word !== ""));
  const defaults = [
    `Port ${port}`,
    "ListenAddress 127.0.0.1",
    `HostKey ${join(dir, "ssh_host_ed25519_key")}`,
    ...(options.hostCertificate?.keyType === "rsa" ? [`HostKey ${join(dir, "ssh_host_rsa_key")}`] : []),
    `PidFile ${join(dir, "sshd.pid")}`,
    `UsePAM ${options.usePam === false ? "no" : "yes"}`,
    "PubkeyAuthentication yes",
    "PasswordAuthentication yes",
    "KbdInteractiveAuthentication yes",
    "PermitRootLogin no",
    "AuthorizedKeysFile .ssh/authorized_keys",
    "StrictModes yes",
    `MaxSessions ${options.lockedDown ? 1 : (options.maxSessions ?? 10)}`,
    "MaxStartups 10:30:100",
    "LoginGraceTime 30",
    "ClientAliveInterval 5",
    "ClientAliveCountMax 3",
    "LogLevel VERBOSE",
    ...(options.sftp === false || options.lockedDown ? [] : ["Subsystem sftp internal-sftp"]),
    "AcceptEnv LANG LC_*",
    "PrintMotd no",
  ].filter((line) => !overridden.has(keyword(line)));
  return `${[...extra, ...defaults, ...blocks].join("\n")}\n`;
}

function keyword(line: string): string {
  return line.trim().split(/\s+/)[0]?.toLowerCase() ?? "";
}
