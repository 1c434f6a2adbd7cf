/**
 * Whether this machine can run one of the throwaway servers the kit starts (sshd, dropbear, redis-server). A suite
 * asks before it starts one, and skips locally when it cannot; in CI (`process.env.CI` set) the question throws
 * instead, because CI must run every real-server suite, never skip it.
 */
export interface ServerSupport {
  readonly available: boolean;
  /** Why the server cannot run here (unset when it can). */
  readonly reason?: string;
}

/** The answer for `server` given why it cannot run (`undefined`: it can); throws in CI when it cannot. */
export function serverSupport(server: string, reason: string | undefined): ServerSupport {
  if (reason === undefined) return { available: true };
  if (process.env.CI) throw new Error(`${server} is required in CI but cannot run: ${reason}`);
  return { available: false, reason };
}
