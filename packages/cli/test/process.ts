/**
 * Runs the built `tunnel` executable as a process, as users do.
 */
import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { readdirSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
import { Readable } from "node:stream";

const PACKAGE_DIR = resolve(import.meta.dirname, "..");
export const BIN = join(PACKAGE_DIR, "dist", "bin.js");

function newestSource(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestSource(path) : statSync(path).mtimeMs);
  }
  return newest;
}

/** Fails (with what to do) when `dist/bin.js` is missing or older than `src/`: the process tests need a fresh build. */
export function assertFreshBuild(): void {
  let built: number;
  try {
    built = statSync(BIN).mtimeMs;
  } catch {
    throw new Error(`${BIN} is missing: run \`pnpm --filter @tunnel-sh/cli build\` first (turbo's test task builds before testing)`);
  }
  if (built < newestSource(join(PACKAGE_DIR, "src"))) {
    throw new Error(`${BIN} is older than src/: run \`pnpm --filter @tunnel-sh/cli build\` first`);
  }
}

export interface Finished {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

export interface Running {
  readonly child: ChildProcessWithoutNullStreams;
  stdout(): string;
  stderr(): string;
  /** Resolves when stdout (ANSI sequences removed) matches `pattern`; rejects after `timeoutMs` or when the process ends first. */
  waitFor(pattern: RegExp, timeoutMs: number): Promise<void>;
  readonly finished: Promise<Finished>;
}

/** Start `command args` with piped stdio. */
export function start(command: string, args: readonly string[], options: { env?: NodeJS.ProcessEnv; cwd?: string } = {}): Running {
  const child = spawn(command, [...args], { env: options.env ?? process.env, cwd: options.cwd ?? PACKAGE_DIR, stdio: "pipe" });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString("utf8")));
  child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString("utf8")));
  const finished = new Promise<Finished>((resolveFinished, reject) => {
    child.on("error", reject);
    child.on("close", (code, signal) => resolveFinished({ code, signal, stdout, stderr }));
  });
  return {
    child,
    stdout: () => stdout,
    stderr: () => stderr,
    finished,
    waitFor: (pattern, timeoutMs) =>
      new Promise<void>((resolveWait, reject) => {
        const timer = setTimeout(() => done(new Error(`timed out waiting for ${pattern}; stdout: ${stdout}; stderr: ${stderr}`)), timeoutMs);
        const check = () => {
          if (pattern.test(plain(stdout))) done();
        };
        const ended = () => done(new Error(`the process ended before ${pattern}; stdout: ${stdout}; stderr: ${stderr}`));
        const done = (error?: Error) => {
          clearTimeout(timer);
          child.stdout.off("data", check);
          child.off("close", ended);
          if (error) reject(error);
          else resolveWait();
        };
        child.stdout.on("data", check);
        child.once("close", ended);
        check();
      }),
  };
}

export interface RunOptions {
  readonly env?: NodeJS.ProcessEnv;
  /** Killed after this long (default 60 s): a guard against a hang, not a timing check. */
  readonly timeoutMs?: number;
  /** Fed to its stdin, then its end (a stream is piped, with backpressure). Absent: stdin is left open. */
  readonly stdin?: string | Uint8Array | Readable;
}

/** Run `command` to the end. */
export async function runToEnd(command: string, args: readonly string[], options: RunOptions = {}): Promise<Finished> {
  const running = start(command, args, options);
  const timer = setTimeout(() => running.child.kill("SIGKILL"), options.timeoutMs ?? 60_000);
  const stdin = options.stdin;
  if (stdin instanceof Readable) stdin.pipe(running.child.stdin);
  else if (stdin !== undefined) running.child.stdin.end(stdin);
  try {
    return await running.finished;
  } finally {
    clearTimeout(timer);
  }
}

/** Run `node dist/bin.js args` to the end. */
export function tunnel(args: readonly string[], options: RunOptions = {}): Promise<Finished> {
  return runToEnd(process.execPath, [BIN, ...args], options);
}

/** Quote one word for `sh`. */
export function shellWord(word: string): string {
  return /^[A-Za-z0-9_./:=@,+-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

export async function eventually(check: () => Promise<boolean> | boolean, timeoutMs: number): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (await check()) return true;
    await new Promise((resolveSleep) => setTimeout(resolveSleep, 100));
  }
  return check();
}

/** Drop ANSI escape sequences and carriage returns. */
export function plain(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/\u001b\[[0-9;?]*[A-Za-z]/g, "").replace(/\r/g, "");
}
