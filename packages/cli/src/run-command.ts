/** `tunnel run`: one shell command line on every host. */
import type { CliIo } from "./cli.js";
import type { ExecOptions } from "./command-options.js";
import { execOnHosts } from "./exec-on-hosts.js";
import { UsageError } from "./usage-error.js";

export async function runCommandOnHosts(io: CliIo, options: ExecOptions, cmd: string): Promise<number> {
  if (cmd.trim() === "") throw new UsageError("run: the command is empty");
  return execOnHosts(io, "run", options, (fields) => ({ type: "command", cmd, ...fields }));
}
