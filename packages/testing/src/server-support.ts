/**
 * Whether this machine can run one of the throwaway servers the kit starts (sshd, dropbear, redis-server). A suite
 * asks before it starts one, and skips locally when it cannot; in CI (`process.env.CI` set) the question throws
 * instead, because CI must run every real-server suite, never skip it.
 */
import { accessSync, constants } from "node:fs";
import { join } from "node:path";

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

/** Whether `path` is a file this process may run. */
export function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** Where `program` is: the first folder of `PATH`, then of `alsoIn`, that holds it as a file this process may run. */
export function findProgram(program: string, alsoIn: readonly string[]): string | undefined {
  const dirs = (process.env.PATH ?? "")
    .split(":")
    .filter((dir) => dir !== "")
    .concat(alsoIn);
  return dirs.map((dir) => join(dir, program)).find(executable);
}
