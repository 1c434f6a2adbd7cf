/**
 * What the server's identification line (`SSH-2.0-OpenSSH_9.2p1 Debian-2`, `SSH-2.0-dropbear_2022.83`) tells the
 * transport before any channel opens: how the server signals a session's command, and how long a command one exec
 * request may carry.
 */
import type { Client } from "ssh2";

/** Bytes of a command in one exec request: well inside the 256 KiB packets OpenSSH accepts, with room for framing. */
export const MAX_EXEC_COMMAND_BYTES = 192 * 1024;

/**
 * dropbear's `MAX_CMD_LEN` (sysoptions.h, 9000 in every release since 2012, measured on 2022.83): a longer exec
 * command is not refused but ends the whole connection ("String too long"), every other channel of it included.
 */
export const DROPBEAR_MAX_EXEC_COMMAND_BYTES = 9000;

export interface ServerSoftware {
  /** The software version of the identification line (`OpenSSH_9.2p1`, `dropbear_2022.83`), if ssh2 kept it. */
  readonly version: string | undefined;
  /**
   * Whether the identification line already says how the server signals (OpenSSH's sshd always makes the session's
   * command a group leader; dropbear never does), so that no probe is needed at connect.
   */
  readonly sessionGroupKnown: boolean;
  /** The server's `signal` requests reach only the session's pid (dropbear): a guess until a probe has asked. */
  readonly signalsOnlySessionPid: boolean;
  /** The longest command, in UTF-8 bytes, one exec request may carry to this server. */
  readonly maxExecCommandBytes: number;
}

/** Read the identification line of an authenticated client's server. */
export function serverSoftware(client: Client): ServerSoftware {
  // ssh2 keeps the server's software version (from its identification line) here; its typings leave it out.
  const software = (client as unknown as { _remoteVer?: unknown })._remoteVer;
  const version = typeof software === "string" ? software : undefined;
  const dropbear = version !== undefined && /dropbear/i.test(version);
  return {
    version,
    sessionGroupKnown: version !== undefined && /^(?:OpenSSH|dropbear)/i.test(version),
    signalsOnlySessionPid: dropbear,
    maxExecCommandBytes: dropbear ? DROPBEAR_MAX_EXEC_COMMAND_BYTES : MAX_EXEC_COMMAND_BYTES,
  };
}
