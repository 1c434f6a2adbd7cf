/**
 * The OpenSSH client (`ssh`, `scp`, `sftp`) as a test reaches a throwaway server with it: nothing from this machine's
 * own set-up (no ssh_config), the server's client key only, its known_hosts checked strictly, and no prompts.
 */
import type { Sshd } from "./sshd.js";

/**
 * The options, before the port and destination (which `ssh` and `scp`/`sftp` spell differently).
 * @example spawn("ssh", [...sshClientArgs(sshd), "-p", String(sshd.port), `${user}@${sshd.host}`, "true"]);
 */
export function sshClientArgs(server: Pick<Sshd, "clientKeyPath" | "knownHostsPath">, knownHostsPath = server.knownHostsPath): string[] {
  const options = ["IdentitiesOnly=yes", `UserKnownHostsFile=${knownHostsPath}`, "StrictHostKeyChecking=yes", "BatchMode=yes"];
  return ["-F", "/dev/null", "-i", server.clientKeyPath, ...options.flatMap((option) => ["-o", option])];
}
