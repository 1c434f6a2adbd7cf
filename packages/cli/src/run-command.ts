/** `tunnel run`: one shell command line on every host. */
import type { CliIo } from "./cli.js";
import { readCommandInput } from "./command-input.js";
import type { RunCommandOptions } from "./command-options.js";
import { execOnHosts } from "./exec-on-hosts.js";
import { UsageError } from "./usage-error.js";

export async function runCommandOnHosts(io: CliIo, options: RunCommandOptions, cmd: string): Promise<number> {
  if (cmd.trim() === "") throw new UsageError("run: the command is empty");
  if (options.stdin === true && options.redis !== undefined) {
    throw new UsageError("--stdin cannot be combined with --redis: the queue carries requests to its workers, not this machine's input");
  }
  let stdin: Buffer | undefined;
  // Read once the hosts, options and sudo are settled (a bad host list never waits for input), before any host starts.
  const beforeRun = options.stdin === true ? async () => void (stdin = await readCommandInput(io.stdin, io.interrupt)) : undefined;
  return execOnHosts(io, "run", options, (fields) => ({ type: "command", cmd, ...fields, ...(stdin !== undefined ? { stdin } : {}) }), beforeRun);
}
