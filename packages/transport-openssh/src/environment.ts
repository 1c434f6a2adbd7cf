/**
 * The environment of every ssh process the transport starts (the ControlMaster, each mux client, the short-lived
 * `-O` and kill clients): the variables below taken from this process, when set, plus the transport's `env` option.
 * Never a copy of the whole environment: it may hold a secret (a password a program read from a variable, a token),
 * and every ssh process — and any ProxyCommand it starts — would carry it, readable in /proc by the same user.
 */
export const INHERITED_VARIABLES: readonly string[] = [
  "PATH",
  "HOME",
  "USER",
  "LOGNAME",
  "SHELL",
  "TMPDIR",
  "TZ",
  "LANG",
  "LANGUAGE",
  "LC_ALL",
  "LC_CTYPE",
  "LC_MESSAGES",
  // The user's agent and Kerberos credentials, which ssh uses for authentication.
  "SSH_AUTH_SOCK",
  "KRB5CCNAME",
  "XDG_RUNTIME_DIR",
];

/**
 * The explicit environment for an ssh process.
 * @example spawn(sshPath, args, { env: sshEnvironment(options.env) })
 */
export function sshEnvironment(extra: Readonly<Record<string, string>> | undefined, from: NodeJS.ProcessEnv = process.env): Record<string, string> {
  const env: Record<string, string> = {};
  for (const name of INHERITED_VARIABLES) {
    const value = from[name];
    if (value !== undefined) env[name] = value;
  }
  return { ...env, ...extra };
}
