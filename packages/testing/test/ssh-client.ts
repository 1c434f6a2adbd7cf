import { spawn } from "node:child_process";
import { sshClientArgs, type Sshd, type SshdUser } from "@tunnel-sh/testing";

export interface SshRun {
  readonly done: Promise<{ code: number | null; stdout: string; stderr: string }>;
  /** Resolves once stdout contains `text`. */
  waitFor(text: string): Promise<string>;
}

/** Run `command` as `user` with the OpenSSH client: key auth only, strict host key checking against the instance's file. */
export function ssh(
  sshd: Sshd,
  user: SshdUser,
  command: string,
  input = "",
  knownHostsPath = sshd.knownHostsPath,
  options: { readonly port?: number; readonly args?: readonly string[] } = {},
): SshRun {
  const child = spawn(
    "ssh",
    [
      ...sshClientArgs(sshd, knownHostsPath),
      "-o",
      "GlobalKnownHostsFile=/dev/null",
      "-o",
      "ConnectTimeout=10",
      ...(options.args ?? []),
      "-p",
      String(options.port ?? sshd.port),
      `${user.name}@${sshd.host}`,
      command,
    ],
    { stdio: ["pipe", "pipe", "pipe"] },
  );
  let stdout = "";
  let stderr = "";
  const waiters: Array<{ text: string; resolve: (value: string) => void }> = [];
  child.stdout.on("data", (chunk: Buffer) => {
    stdout += chunk.toString("utf8");
    for (const waiter of waiters.filter((candidate) => stdout.includes(candidate.text))) {
      waiters.splice(waiters.indexOf(waiter), 1);
      waiter.resolve(stdout);
    }
  });
  child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString("utf8")));
  child.stdin.on("error", () => {});
  child.stdin.end(input);
  const done = new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) =>
    child.on("close", (code) => resolve({ code, stdout, stderr })),
  );
  return {
    done,
    waitFor: (text) =>
      stdout.includes(text)
        ? Promise.resolve(stdout)
        : new Promise((resolve, reject) => {
            waiters.push({ text, resolve });
            void done.then((result) => reject(new Error(`ssh ended before printing ${text}: ${JSON.stringify(result)}`)));
          }),
  };
}
