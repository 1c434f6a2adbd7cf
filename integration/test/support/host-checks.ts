/**
 * The capabilities the host matrix checks on every server × login shell × transport cell: one function per
 * capability, each asserting the behaviour it names against a real server. A cell that cannot do something states
 * it as an expected typed failure (`expect`), so "unsupported" is asserted too and is never a silent success.
 */
import { createHash, randomBytes } from "node:crypto";
import { execFileSync } from "node:child_process";
import { mkdir, mkdtemp, readFile, readdir, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { expect } from "vitest";
import { AbortError, TimeoutError, TunnelError, type Executor, type Target } from "@tunnel-sh/core";
import { remoteProcesses } from "@tunnel-sh/testing";

export interface CheckContext {
  readonly executor: Executor;
  readonly target: Target & { readonly user: string };
  /** A folder of the login user's on the host (created for the cell), for transfers. */
  readonly remoteDir: string;
  /** A local scratch folder for the cell. */
  readonly localDir: string;
}

export type CheckName =
  | "command-env"
  | "hostile-env"
  | "working-dir-quoted"
  | "working-dir-missing"
  | "exit-code"
  | "signal"
  | "stdin"
  | "pty"
  | "shell-option"
  | "script-bash-args"
  | "script-shebang"
  | "sudo-root-env"
  | "sudo-other-user"
  | "timeout"
  | "abort"
  | "timeout-compound"
  | "timeout-sudo"
  | "transfer-verify-mode"
  | "transfer-owner-sudo"
  | "transfer-tree";

/**
 * What a cell expects of a check: it works; or it fails with this error code (never silently); or it is a known gap
 * — the check's assertion fails for the stated reason (the table shows it; the test fails once the gap is closed,
 * so the expectation gets updated).
 */
export type Expectation = "works" | { readonly failsWith: string; readonly reason?: string } | { readonly gap: string };

export const HOSTILE = 'it\'s "q" $HOME `id` \\ ! !! %s\ttab\nline ünï';

/** Processes of `user` on the (local) host whose command line holds `marker`. */
async function leftover(user: string, marker: string): Promise<string[]> {
  return (await remoteProcesses(user).catch(() => [])).filter((entry) => entry.args.includes(marker)).map((entry) => `${entry.pid} ${entry.args}`);
}

/** Polls until nothing of `marker` is left; the bound is generous (a loaded CI machine), not a timing goal. */
async function expectGone(users: readonly string[], marker: string): Promise<void> {
  const end = Date.now() + 15_000;
  let left: string[] = [];
  while (Date.now() < end) {
    left = (await Promise.all(users.map((user) => leftover(user, marker)))).flat();
    if (left.length === 0) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  expect(left).toEqual([]);
}

async function failure(run: () => Promise<unknown>): Promise<TunnelError> {
  const error = await run().then(
    (value) => new Error(`expected a failure, got ${JSON.stringify(value)}`),
    (caught: unknown) => caught,
  );
  if (!TunnelError.is(error)) throw error;
  return error;
}

/** A unique `sleep` length, so leftovers are found by their command line. */
function uniqueSleep(): string {
  return `${300 + Math.floor(Math.random() * 600)}.${Math.floor(Math.random() * 9) + 1}`;
}

function sha256(data: Buffer): string {
  return createHash("sha256").update(data).digest("hex");
}

export const CHECKS: Readonly<Record<CheckName, (context: CheckContext) => Promise<void>>> = {
  async "command-env"({ executor, target }) {
    const result = await executor.runCommand({ ...target, cmd: 'printf "%s|" "$A" "$(id -un)"; for w in 1 2; do printf "%s" "$w"; done', env: { A: "a b" } });
    expect(result).toMatchObject({ exitCode: 0, stdout: `a b|${target.user}|12`, stderr: "", attempts: 1 });
  },

  async "hostile-env"({ executor, target }) {
    const result = await executor.runCommand({ ...target, cmd: 'printf "%s" "$HOSTILE"', env: { HOSTILE } });
    expect(result).toMatchObject({ exitCode: 0, stdout: HOSTILE, stderr: "" });
  },

  async "working-dir-quoted"({ executor, target, remoteDir }) {
    const dir = `${remoteDir}/it's a "dir" $x`;
    await executor.runCommand({ ...target, cmd: 'mkdir -p -- "$D"', env: { D: dir }, check: true });
    const result = await executor.runCommand({ ...target, cmd: "pwd", workingDir: dir });
    expect(result).toMatchObject({ exitCode: 0, stdout: `${dir}\n`, stderr: "" });
  },

  async "working-dir-missing"({ executor, target, remoteDir }) {
    const error = await failure(() => executor.runCommand({ ...target, cmd: "echo RAN", workingDir: `${remoteDir}/no such dir` }));
    expect(error).toMatchObject({ code: "VALIDATION", field: "workingDir" });
  },

  async "exit-code"({ executor, target }) {
    expect(await executor.runCommand({ ...target, cmd: "echo out; echo err >&2; exit 3" })).toMatchObject({
      exitCode: 3,
      signal: null,
      stdout: "out\n",
      stderr: "err\n",
    });
  },

  async signal({ executor, target }) {
    expect(await executor.runCommand({ ...target, cmd: "kill -TERM $$; echo not-reached" })).toMatchObject({ exitCode: null, signal: "SIGTERM", stdout: "" });
  },

  async stdin({ executor, target }) {
    const input = `${HOSTILE}\n${"x".repeat(100_000)}\n`;
    const result = await executor.runCommand({ ...target, cmd: "cat; echo end", stdin: input });
    expect(result.stdout).toBe(`${input}end\n`);
    // A stream is piped only once the process started: every byte arrives, in order, as from a string.
    const chunks = [input.slice(0, 50_000), input.slice(50_000)].map((part) => Buffer.from(part));
    const streamed = await executor.runCommand({ ...target, cmd: "cat; echo end", stdin: Readable.from(chunks) });
    expect(streamed.stdout).toBe(`${input}end\n`);
  },

  async pty({ executor, target }) {
    const result = await executor.runCommand({ ...target, cmd: "tty; echo term=$TERM", pty: { term: "xterm-256color" } });
    expect(result.stdout).toMatch(/^\/dev\/pts\/\d+\r\nterm=xterm-256color\r\n$/);
  },

  async "shell-option"({ executor, target }) {
    const result = await executor.runCommand({ ...target, cmd: '[[ "a b" == a* ]] && echo "bash ${BASH_VERSINFO[0]:+ok}"', shell: "bash" });
    expect(result).toMatchObject({ exitCode: 0, stdout: "bash ok\n" });
  },

  async "script-bash-args"({ executor, target }) {
    const args = [HOSTILE, "", "-n", "*"];
    const result = await executor.runScript({ ...target, content: 'for a in "$@"; do printf "[%s]" "$a"; done; echo " $#"', interpreter: "bash", args });
    expect(result).toMatchObject({ exitCode: 0, stdout: `${args.map((arg) => `[${arg}]`).join("")} 4\n` });
  },

  async "script-shebang"({ executor, target }) {
    const result = await executor.runScript({ ...target, content: '#!/bin/sh\nset -eu\nf() { echo "f:$1"; }\nf "$1"\n', args: ["it's"], env: { X: "1" } });
    expect(result).toMatchObject({ exitCode: 0, stdout: "f:it's\n" });
  },

  async "sudo-root-env"({ executor, target }) {
    const result = await executor.runCommand({ ...target, cmd: 'printf "%s|%s" "$(id -u)" "$HOSTILE"', sudo: true, env: { HOSTILE } });
    expect(result).toMatchObject({ exitCode: 0, stdout: `0|${HOSTILE}`, stderr: "" });
  },

  async "sudo-other-user"({ executor, target }) {
    const result = await executor.runCommand({ ...target, cmd: "id -un", sudo: { user: "tunnel_other" } });
    expect(result).toMatchObject({ exitCode: 0, stdout: "tunnel_other\n" });
  },

  async timeout({ executor, target }) {
    const seconds = uniqueSleep();
    const error = await failure(() => executor.runCommand({ ...target, cmd: `sleep ${seconds}`, timeout: 1_500 }));
    expect(error).toBeInstanceOf(TimeoutError);
    await expectGone([target.user], `sleep ${seconds}`);
  },

  async abort({ executor, target }) {
    const seconds = uniqueSleep();
    const controller = new AbortController();
    const running = failure(() =>
      executor.runCommand({ ...target, cmd: `echo started; sleep ${seconds}; echo done`, signal: controller.signal, onStdout: () => controller.abort() }),
    );
    const error = await running;
    expect(error).toBeInstanceOf(AbortError);
    await expectGone([target.user], `sleep ${seconds}`);
  },

  async "timeout-compound"({ executor, target }) {
    const seconds = uniqueSleep();
    const error = await failure(() => executor.runCommand({ ...target, cmd: `sleep ${seconds} & sleep ${seconds}; echo done`, timeout: 1_500 }));
    expect(error).toBeInstanceOf(TimeoutError);
    await expectGone([target.user], `sleep ${seconds}`);
  },

  async "timeout-sudo"({ executor, target }) {
    const seconds = uniqueSleep();
    const error = await failure(() => executor.runCommand({ ...target, cmd: `sleep ${seconds}; echo done`, sudo: true, timeout: 1_500 }));
    expect(error).toBeInstanceOf(TimeoutError);
    await expectGone(["root", target.user], `sleep ${seconds}`);
  },

  async "transfer-verify-mode"({ executor, target, remoteDir, localDir }) {
    const data = randomBytes(2 * 1024 * 1024 + 17);
    const source = join(localDir, "up.bin");
    await writeFile(source, data);
    const remote = `${remoteDir}/up it's.bin`;
    const progress: number[] = [];
    const up = await executor.transferFile({
      ...target,
      direction: "upload",
      source,
      destination: remote,
      verify: "sha256",
      mode: "0640",
      onProgress: (p) => progress.push(p.bytes),
    });
    expect(up).toMatchObject({ bytes: data.length, files: 1, verified: true });
    expect(progress.at(-1)).toBe(data.length);
    const listed = await executor.runCommand({ ...target, cmd: 'ls -l -- "$F"; ls -a -- "$(dirname -- "$F")"', env: { F: remote } });
    expect(listed.stdout).toMatch(/^-rw-r-----/);
    expect(listed.stdout).not.toContain(".part");
    const back = join(localDir, "down.bin");
    const down = await executor.transferFile({ ...target, direction: "download", source: remote, destination: back, verify: "sha256" });
    expect(down).toMatchObject({ bytes: data.length, files: 1, verified: true });
    expect(sha256(await readFile(back))).toBe(sha256(data));
  },

  async "transfer-owner-sudo"({ executor, target, remoteDir, localDir }) {
    const source = join(localDir, "owned.txt");
    await writeFile(source, "owned\n");
    const remote = `${remoteDir}/owned.txt`;
    await executor.transferFile({ ...target, direction: "upload", source, destination: remote, owner: "tunnel_other", sudo: true });
    const owner = execFileSync("stat", ["-c", "%U", remote]).toString().trim();
    expect(owner).toBe("tunnel_other");
  },

  async "transfer-tree"({ executor, target, remoteDir, localDir }) {
    const tree = join(localDir, "tree");
    await mkdir(join(tree, "sub dir", "deeper"), { recursive: true });
    await writeFile(join(tree, "a.txt"), "a\n");
    await writeFile(join(tree, "sub dir", "it's.txt"), "quoted\n");
    await writeFile(join(tree, "sub dir", "deeper", "z.bin"), randomBytes(70_000));
    const remote = `${remoteDir}/tree`;
    const up = await executor.transferFile({ ...target, direction: "upload", source: tree, destination: remote, recursive: true, verify: "sha256" });
    expect(up).toMatchObject({ files: 3, verified: true });
    const back = join(localDir, "tree-back");
    const down = await executor.transferFile({ ...target, direction: "download", source: remote, destination: back, recursive: true, verify: "sha256" });
    expect(down).toMatchObject({ files: 3, verified: true });
    expect((await readdir(join(back, "sub dir"))).sort()).toEqual(["deeper", "it's.txt"]);
    expect(await readFile(join(back, "sub dir", "it's.txt"), "utf8")).toBe("quoted\n");
    expect((await stat(join(back, "sub dir", "deeper", "z.bin"))).size).toBe(70_000);
  },
};

/** Runs one check as the cell expects it: it works, or it fails with the stated typed error. */
export async function runCheck(name: CheckName, expectation: Expectation, context: CheckContext): Promise<void> {
  if (expectation === "works") {
    await CHECKS[name](context);
    return;
  }
  if ("gap" in expectation) {
    const outcome = await CHECKS[name](context).then(
      () => "passed",
      () => "failed",
    );
    expect(outcome, `known gap (${expectation.gap}) no longer fails: update the matrix`).toBe("failed");
    return;
  }
  const error = await failure(() => CHECKS[name](context));
  expect({ code: error.code, reason: (error as { reason?: string }).reason }).toMatchObject({
    code: expectation.failsWith,
    ...(expectation.reason !== undefined ? { reason: expectation.reason } : {}),
  });
}

/** A local scratch folder and a folder of the login user's on the host, for one cell. */
export async function cellFolders(
  executor: Executor,
  target: Target & { readonly user: string },
): Promise<{ localDir: string; remoteDir: string; cleanup: () => Promise<void> }> {
  const localDir = await mkdtemp(join(tmpdir(), "tunnel-matrix-"));
  const result = await executor.runCommand({
    ...target,
    cmd: 'd=$(mktemp -d "${TMPDIR:-/tmp}/tunnel-matrix.XXXXXX") && chmod 755 "$d" && printf "%s" "$d"',
    check: true,
  });
  const remoteDir = result.stdout;
  return {
    localDir,
    remoteDir,
    cleanup: async () => {
      await rm(localDir, { recursive: true, force: true });
      await executor.runCommand({ ...target, cmd: 'rm -rf -- "$D"', env: { D: remoteDir }, sudo: true }).catch(() => undefined);
    },
  };
}
