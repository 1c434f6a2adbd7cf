/** The sudo request of a command, and the redactor that keeps its password out of everything printed. */
import { Redactor } from "@tunnel-sh/core";
import type { SudoOptions } from "@tunnel-sh/core";
import type { CliIo } from "./cli.js";
import type { QueueCliOptions, SudoCliOptions } from "./command-options.js";
import { promptHidden } from "./prompt.js";
import { UsageError } from "./usage-error.js";

/** The sudo request from the options; the password comes from the terminal or an environment variable, never argv. */
export async function resolveSudo(io: CliIo, options: SudoCliOptions & QueueCliOptions): Promise<boolean | SudoOptions | undefined> {
  if (options.askSudoPass && options.sudoPassEnv !== undefined) throw new UsageError("use either --ask-sudo-pass or --sudo-pass-env, not both");
  const wanted =
    options.sudo === true ||
    options.sudoUser !== undefined ||
    options.askSudoPass === true ||
    options.sudoPassEnv !== undefined ||
    options.sudoSecret !== undefined;
  if (!wanted) return undefined;
  let password: string | undefined;
  if (options.sudoPassEnv !== undefined) {
    password = io.env[options.sudoPassEnv];
    if (password === undefined || password === "") throw new UsageError(`--sudo-pass-env: the environment variable ${options.sudoPassEnv} is not set`);
  } else if (options.askSudoPass) {
    password = await promptHidden("sudo password: ", io.stdin, io.stderr);
    if (password === "") throw new UsageError("--ask-sudo-pass: empty password");
  }
  if (options.sudoUser === undefined && password === undefined) return true;
  return { ...(options.sudoUser !== undefined ? { user: options.sudoUser } : {}), ...(password !== undefined ? { password } : {}) };
}

/** A redactor that knows the sudo password, when there is one. */
export function sudoRedactor(sudo: boolean | SudoOptions | undefined): Redactor {
  const redactor = new Redactor();
  if (typeof sudo === "object" && sudo.password !== undefined) redactor.add(sudo.password);
  return redactor;
}
