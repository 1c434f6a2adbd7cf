/**
 * `--sudo-pass-env VAR` names a variable that holds a password. tunnel reads it once and removes it from its own
 * environment before anything else starts, so no child process (an `ssh` of the openssh transport, a ProxyCommand,
 * a helper) can inherit it.
 */

/** The variables `--sudo-pass-env` names in `argv` (`--sudo-pass-env VAR` and `--sudo-pass-env=VAR`), up to `--`. */
export function secretVariables(argv: readonly string[]): string[] {
  const names: string[] = [];
  for (let index = 0; index < argv.length; index++) {
    const word = argv[index] as string;
    if (word === "--") break;
    if (word === "--sudo-pass-env" && index + 1 < argv.length) names.push(argv[++index] as string);
    else if (word.startsWith("--sudo-pass-env=")) names.push(word.slice("--sudo-pass-env=".length));
  }
  return names.filter((name) => name.length > 0);
}

/**
 * Moves the secret variables out of `env` (the process's environment): returns a private copy of `env` that still
 * holds them, for the CLI to read, and deletes them from `env` itself.
 * @example const env = takeSecretVariables(process.argv.slice(2), process.env); // process.env no longer has them
 */
export function takeSecretVariables(argv: readonly string[], env: NodeJS.ProcessEnv): Record<string, string | undefined> {
  const copy = { ...env };
  for (const name of secretVariables(argv)) delete env[name];
  return copy;
}
