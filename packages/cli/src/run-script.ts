/** `tunnel script`: a local script file on every host (uploaded to a private temp folder, removed afterwards). */
import { readFile } from "node:fs/promises";
import type { CliIo } from "./cli.js";
import type { ExecOptions } from "./command-options.js";
import { execOnHosts } from "./exec-on-hosts.js";
import { UsageError } from "./usage-error.js";

export async function runScriptOnHosts(io: CliIo, options: ExecOptions, file: string, args: readonly string[]): Promise<number> {
  let content: string;
  try {
    content = await readFile(file, "utf8");
  } catch (error) {
    throw new UsageError(`script ${file}: cannot read it (${(error as NodeJS.ErrnoException).code ?? String(error)})`);
  }
  return execOnHosts(io, "script", options, (fields) => ({
    type: "script",
    content,
    args,
    ...(options.interpreter !== undefined ? { interpreter: options.interpreter } : {}),
    ...fields,
  }));
}
