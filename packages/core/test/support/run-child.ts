import { spawn } from "node:child_process";

export interface ChildOutcome {
  readonly code: number | null;
  readonly stdout: Buffer;
  readonly stderr: string;
}

/** Run `argv` on this machine to its end: `stdin` written then closed, the output collected (stdout as bytes). */
export function runChild(
  argv: readonly string[],
  options: { readonly stdin?: string; readonly env?: NodeJS.ProcessEnv; readonly cwd?: string } = {},
): Promise<ChildOutcome> {
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0] as string, argv.slice(1), { stdio: ["pipe", "pipe", "pipe"], env: options.env ?? process.env, cwd: options.cwd });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on("data", (chunk: Buffer) => out.push(chunk));
    child.stderr.on("data", (chunk: Buffer) => err.push(chunk));
    child.on("error", reject);
    child.stdin.on("error", () => {});
    child.stdin.end(options.stdin ?? "");
    child.on("close", (code) => resolve({ code, stdout: Buffer.concat(out), stderr: Buffer.concat(err).toString("utf8") }));
  });
}
