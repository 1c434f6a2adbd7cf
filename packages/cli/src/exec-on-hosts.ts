/** What `tunnel run` and `tunnel script` share: `--env`, `--cwd`, sudo, the time limit and `--stdin`, on every host. */
import type { FleetCommand, FleetOperation } from "@tunnel-sh/core";
import type { CliIo } from "./cli.js";
import { commandInput } from "./command-input.js";
import type { ExecOptions } from "./command-options.js";
import { prepareHosts } from "./host-selection.js";
import { ENV_NAME } from "./inventory.js";
import { onEveryHost } from "./on-every-host.js";
import { resolveSudo, sudoRedactor } from "./sudo-options.js";
import { UsageError } from "./usage-error.js";

/** The request fields a command and a script share, for one host. */
export type ExecFields = Pick<FleetCommand, "env" | "workingDir" | "sudo" | "timeout" | "stdin">;

/**
 * `--env` values: `NAME=value` (the value may hold `=`; it may be empty).
 * @example parseEnvAssignments(["LC_ALL=C", "GREETING=a=b"]) // { LC_ALL: "C", GREETING: "a=b" }
 */
export function parseEnvAssignments(values: readonly string[]): Record<string, string> {
  const env: Record<string, string> = {};
  for (const value of values) {
    const equals = value.indexOf("=");
    if (equals <= 0) throw new UsageError(`--env ${JSON.stringify(value)}: expected NAME=value`);
    const name = value.slice(0, equals);
    if (!ENV_NAME.test(name)) throw new UsageError(`--env: "${name}" is not a valid variable name (letters, digits, _; not starting with a digit)`);
    env[name] = value.slice(equals + 1);
  }
  return env;
}

/**
 * Check the options, pick the hosts, ask for the sudo password if needed, read `--stdin`, then run `operation` (given
 * each host's shared fields: its inventory vars under `--env`, `--cwd`, sudo, `--timeout`, the input) on every host.
 * Resolves with the exit status.
 */
export async function execOnHosts(
  io: CliIo,
  commandName: "run" | "script",
  options: ExecOptions,
  operation: (fields: ExecFields) => FleetOperation,
): Promise<number> {
  if (options.stdin === true && options.redis !== undefined) {
    throw new UsageError("--stdin cannot be combined with --redis: the queue carries requests to its workers, not this machine's input");
  }
  const env = parseEnvAssignments(options.env ?? []);
  const hosts = await prepareHosts(options);
  const sudo = await resolveSudo(io, options);
  // Taken once the hosts, options and sudo are settled (a bad host list never waits for input), before any host starts.
  const input = options.stdin === true ? await commandInput(io.stdin, hosts.length, io.interrupt) : undefined;
  try {
    return await onEveryHost(io, commandName, options, hosts, sudoRedactor(sudo), (host) =>
      operation({
        env: { ...host.vars, ...env },
        ...(options.cwd !== undefined ? { workingDir: options.cwd } : {}),
        ...(sudo !== undefined ? { sudo } : {}),
        ...(options.timeout !== undefined ? { timeout: options.timeout } : {}),
        ...(input !== undefined ? { stdin: input.stdin } : {}),
      }),
    );
  } finally {
    input?.release();
  }
}
