/** Run a short-lived ssh command (`-O check`, a remote `kill`) and collect its result. */
import { spawn } from "node:child_process";
import { sshEnvironment } from "./environment.js";
import type { ResolvedOptions } from "./options.js";

export interface SshRunResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

export function runSsh(
  options: ResolvedOptions,
  args: readonly string[],
  settings: { readonly timeoutMs: number; readonly signal?: AbortSignal; readonly input?: string },
): Promise<SshRunResult> {
  return new Promise((resolve) => {
    const child = spawn(options.sshPath, args, {
      stdio: [settings.input === undefined ? "ignore" : "pipe", "pipe", "pipe"],
      env: sshEnvironment(options.env),
      detached: true,
    });
    let stdout = "";
    let stderr = "";
    child.stdout?.on("data", (chunk: Buffer) => {
      if (stdout.length < 65_536) stdout += chunk.toString();
    });
    child.stderr?.on("data", (chunk: Buffer) => {
      if (stderr.length < 65_536) stderr += chunk.toString();
    });
    if (settings.input !== undefined) {
      child.stdin?.on("error", () => undefined);
      child.stdin?.end(settings.input);
    }
    const kill = () => child.kill("SIGKILL");
    const timer = setTimeout(kill, settings.timeoutMs);
    settings.signal?.addEventListener("abort", kill, { once: true });
    child.on("error", (error) => {
      stderr += `ssh: ${error.message}\n`;
    });
    child.on("close", (code) => {
      clearTimeout(timer);
      settings.signal?.removeEventListener("abort", kill);
      resolve({ code, stdout, stderr });
    });
  });
}
