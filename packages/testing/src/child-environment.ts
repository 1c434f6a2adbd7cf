/**
 * The explicit environment of the helper processes the test kit starts (sshd, ssh-keygen, useradd, local shells):
 * a few variables of this process, never a copy of all of it, so a secret a test put into its own environment does
 * not spread to every child.
 */
const INHERITED = ["PATH", "HOME", "USER", "LOGNAME", "SHELL", "TMPDIR", "TZ", "LANG", "LC_ALL", "LC_CTYPE"] as const;

export function childEnvironment(extra: Readonly<Record<string, string>> = {}): Record<string, string> {
  const env: Record<string, string> = {};
  for (const name of INHERITED) {
    const value = process.env[name];
    if (value !== undefined) env[name] = value;
  }
  if (env["PATH"] === undefined) env["PATH"] = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
  return { ...env, ...extra };
}
