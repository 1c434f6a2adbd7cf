import { createHash, randomBytes } from "node:crypto";
import { readdir, readFile, rm, stat } from "node:fs/promises";
import { Readable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AbortError, AuthenticationError, CircuitOpenError, SudoError, TimeoutError, TunnelError, ValidationError } from "@tunnel-sh/core";
import { RecordingTracer, remoteProcesses, startSshd } from "@tunnel-sh/testing";
import type { Sshd } from "@tunnel-sh/testing";
import { makeStack, TRANSPORTS, testExecutorConfig } from "./support/transports.js";
import type { Stack } from "./support/transports.js";
import { eventually } from "./support/fault-processes.js";

const AWKWARD = [
  "plain",
  "",
  "with space",
  "it's",
  'double "quoted"',
  "$HOME and ${PATH} and $(id)",
  "`backticks`",
  "glob * ? [a-z]",
  "new\nline",
  "tab\there",
  "back\\slash\\",
  "-leading-dash",
  "--",
  "ünïcödé ✓ 日本",
  "semi;colon && pipe | amp &",
  "!bang !!",
  "~tilde",
];

/** Processes of `user` whose command line contains `marker`, on the (local) test server. */
async function leftover(user: string, marker: string): Promise<string[]> {
  return (await remoteProcesses(user)).filter((p) => p.args.includes(marker)).map((p) => `${p.pid} ${p.args}`);
}

async function scriptFolders(user: string): Promise<string[]> {
  const found: string[] = [];
  for (const name of await readdir("/tmp")) {
    if (!name.startsWith("tunnel-script.")) continue;
    const info = await stat(`/tmp/${name}`).catch(() => undefined);
    if (info && (await import("node:child_process")).execFileSync("id", ["-u", user]).toString().trim() === String(info.uid)) found.push(name);
  }
  return found;
}

describe.each(TRANSPORTS)("Executor over %s on a real sshd", (transportName) => {
  let sshd: Sshd;
  let stack: Stack;
  let sudoStack: Stack;
  let tracer: RecordingTracer;
  const plain = () => ({ host: sshd.host, port: sshd.port, user: sshd.users.plain.name });
  const sudoer = () => ({ host: sshd.host, port: sshd.port, user: sshd.users.sudo.name });
  const pwsudo = () => ({ host: sshd.host, port: sshd.port, user: sshd.users.pwsudo.name });

  beforeAll(async () => {
    sshd = await startSshd();
    tracer = new RecordingTracer();
    stack = makeStack(transportName, sshd, { tracer });
    sudoStack = makeStack(transportName, sshd);
  });
  afterAll(async () => {
    await stack?.close();
    await sudoStack?.close();
    await sshd?.stop();
  });

  it("runs a command with env and reuses the pooled connection", async () => {
    const first = await stack.executor.runCommand({ ...plain(), cmd: 'echo "$GREETING"; id -un', env: { GREETING: "hello", LC_ALL: "C" } });
    expect(first).toMatchObject({ exitCode: 0, stdout: `hello\n${sshd.users.plain.name}\n`, attempts: 1 });
    await stack.executor.runCommand({ ...plain(), cmd: "true" });
    expect(stack.pool.stats().created).toBe(1);
  });

  it("round-trips awkward env values and script args exactly", async () => {
    const env = Object.fromEntries(AWKWARD.map((value, index) => [`V${index}`, value]));
    const result = await stack.executor.runCommand({
      ...plain(),
      cmd: AWKWARD.map((_, index) => `printf '%s\\0' "$V${index}"`).join("; "),
      env,
    });
    expect(result.stdout.split("\0").slice(0, -1)).toEqual(AWKWARD);
    const script = await stack.executor.runScript({ ...plain(), content: '#!/bin/sh\nfor a in "$@"; do printf \'%s\\0\' "$a"; done\n', args: AWKWARD });
    expect(script.stdout.split("\0").slice(0, -1)).toEqual(AWKWARD);
  });

  it("enters working dirs with spaces and quotes, and fails fast on a missing one", async () => {
    const dir = `/tmp/tunnel wd it's "${transportName}"`;
    await stack.executor.runCommand({ ...plain(), cmd: 'mkdir -p -- "$D"', env: { D: dir } });
    const result = await stack.executor.runCommand({ ...plain(), cmd: "pwd", workingDir: dir });
    expect(result.stdout).toBe(`${dir}\n`);
    const error = await stack.executor
      .runCommand({ ...plain(), cmd: "touch ran-anyway", workingDir: "/tmp/tunnel-no-such-dir" })
      .catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(ValidationError);
    expect((error as ValidationError).field).toBe("workingDir");
    await rm(dir, { recursive: true, force: true });
  });

  describe("sudo", () => {
    it("runs as root without a password for a NOPASSWD user, keeping env", async () => {
      const result = await sudoStack.executor.runCommand({ ...sudoer(), cmd: 'id -u; echo "$TOKEN"', sudo: true, env: { TOKEN: "kept" } });
      expect(result).toMatchObject({ exitCode: 0, stdout: "0\nkept\n", stderr: "" });
    });

    it("runs as another user with sudo -u", async () => {
      const result = await sudoStack.executor.runCommand({ ...sudoer(), cmd: "id -un", sudo: { user: sshd.users.other.name } });
      expect(result.stdout).toBe(`${sshd.users.other.name}\n`);
    });

    it("fails fast with a SudoError when a password is required but none given", async () => {
      // "Fast": sudo is told not to prompt, so it fails instead of waiting for a password that never comes.
      const error = await sudoStack.executor.runCommand({ ...pwsudo(), cmd: "id -u", sudo: true }).catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(SudoError);
      expect((error as SudoError).reason).toBe("password-required");
    });

    it("answers the password prompt once and strips it; the password is in no output, error, trace or argv", async () => {
      const password = sshd.users.pwsudo.password;
      const seenInArgv: string[] = [];
      let sampling = true;
      const sampler = (async () => {
        while (sampling) {
          for (const pid of await readdir("/proc").catch(() => [] as string[])) {
            if (!/^\d+$/.test(pid)) continue;
            const cmdline = await readFile(`/proc/${pid}/cmdline`, "utf8").catch(() => "");
            if (cmdline.includes(password)) seenInArgv.push(cmdline);
          }
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
      })();
      const result = await stack.executor.runCommand({ ...pwsudo(), cmd: "id -u; echo done >&2", sudo: { password } });
      const wrong = await stack.executor
        .runCommand({ ...pwsudo(), cmd: "id -u", sudo: { password: "not-the-password-xyz" } })
        .catch((caught: unknown) => caught);
      sampling = false;
      await sampler;
      expect(result).toMatchObject({ exitCode: 0, stdout: "0\n", stderr: "done\n", attempts: 1 });
      expect(wrong).toBeInstanceOf(SudoError);
      expect((wrong as SudoError).reason).toBe("wrong-password");
      expect(stack.executor.stats().failuresByCode.SUDO).toBeGreaterThanOrEqual(1);
      expect(JSON.stringify(result)).not.toContain(password);
      expect(String(wrong)).not.toContain("not-the-password-xyz");
      expect(JSON.stringify(tracer.spans.map((span) => [span.attributes, span.events, span.errors.map(String)]))).not.toContain(password);
      expect(seenInArgv).toEqual([]);
    });

    it("refuses a user who is not in sudoers with a SudoError", async () => {
      const error = await stack.executor
        .runCommand({ ...plain(), cmd: "id -u", sudo: { password: sshd.users.plain.password } })
        .catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(SudoError);
      expect((error as SudoError).reason).toBe("not-allowed");
    });
  });

  describe("cancellation", () => {
    it("a timeout stops the command and every child it started", async () => {
      const marker = `sleep 31${transportName === "ssh2" ? 1 : 2}`;
      const error = await stack.executor
        .runCommand({ ...plain(), cmd: `${marker} & ${marker} & ${marker}`, timeout: 1_000 })
        .catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(TimeoutError);
      expect(await eventually(async () => (await leftover(sshd.users.plain.name, marker)).length === 0, 20_000)).toBe(true);
      expect((await stack.executor.runCommand({ ...plain(), cmd: "echo still-usable" })).stdout).toBe("still-usable\n");
    });

    it("an abort stops a command run under sudo", async () => {
      const marker = `sleep 32${transportName === "ssh2" ? 1 : 2}`;
      const controller = new AbortController();
      const running = sudoStack.executor.runCommand({ ...sudoer(), cmd: `${marker} & ${marker}`, sudo: true, signal: controller.signal });
      // Both sleeps run (the lines that are the sleep itself, not the sudo and shell lines that name it).
      const sleeps = async () => (await leftover("root", marker)).filter((line) => line.endsWith(` ${marker}`) && !line.includes("-c")).length;
      expect(await eventually(async () => (await sleeps()) === 2, 20_000)).toBe(true);
      controller.abort();
      await expect(running).rejects.toBeInstanceOf(AbortError);
      expect(await eventually(async () => (await leftover("root", marker)).length === 0, 20_000)).toBe(true);
    });
  });

  describe("runScript", () => {
    it("runs sh, bash, python3 and node-style scripts by interpreter and shebang", async () => {
      const sh = await stack.executor.runScript({ ...plain(), content: "echo sh:$1", args: ["a"] });
      const bash = await stack.executor.runScript({ ...plain(), content: "#!/bin/bash\necho bash:${BASH_VERSION%%.*}" });
      const python = await stack.executor.runScript({ ...plain(), content: "import sys\nprint('py', sys.argv[1])", interpreter: "python3", args: ["x y"] });
      expect(sh.stdout).toBe("sh:a\n");
      expect(bash.stdout).toMatch(/^bash:\d+\n$/);
      expect(python.stdout).toBe("py x y\n");
      const missing = await stack.executor.runScript({ ...plain(), content: "1", interpreter: "no-such-interpreter" }).catch((caught: unknown) => caught);
      expect((missing as ValidationError).field).toBe("interpreter");
    });

    it("gives the script its stdin (a string, bytes, or a stream, attempted once), through sudo as well", async () => {
      const text = await stack.executor.runScript({ ...plain(), content: '#!/bin/sh\nread -r line; echo "got [$line]"', stdin: "first line\nsecond\n" });
      expect(text.stdout).toBe("got [first line]\n");
      const bytes = randomBytes(200_000);
      const hashed = await stack.executor.runScript({ ...plain(), content: "sha256sum", stdin: bytes });
      expect(hashed.stdout).toBe(`${createHash("sha256").update(bytes).digest("hex")}  -\n`);
      const streamed = await stack.executor.runScript({ ...plain(), content: "wc -c", stdin: Readable.from([Buffer.alloc(70_000), Buffer.alloc(30_000)]) });
      expect(streamed.stdout.trim()).toBe("100000");
      expect(streamed.attempts).toBe(1);
      const asRoot = await sudoStack.executor.runScript({ ...sudoer(), content: 'echo "$(id -un): $(cat)"', stdin: "piped", sudo: true });
      expect(asRoot.stdout).toBe("root: piped\n");
    });

    it("leaves no temp folder after success, failure, timeout and abort", async () => {
      const user = sshd.users.plain.name;
      await stack.executor.runScript({ ...plain(), content: "echo ok" });
      await stack.executor.runScript({ ...plain(), content: "exit 3" });
      await expect(stack.executor.runScript({ ...plain(), content: "sleep 30", timeout: 800 })).rejects.toBeInstanceOf(TimeoutError);
      const controller = new AbortController();
      setTimeout(() => controller.abort(), 500);
      await expect(stack.executor.runScript({ ...plain(), content: "sleep 30", signal: controller.signal })).rejects.toBeInstanceOf(AbortError);
      expect(await scriptFolders(user)).toEqual([]);
    });

    it("runs a deployment-style script with sudo and env", async () => {
      const result = await sudoStack.executor.runScript({
        ...sudoer(),
        content: '#!/bin/bash\nset -euo pipefail\necho "deploying $APP_VERSION as $(id -un) in $PWD"\n',
        env: { APP_VERSION: "1.2.3" },
        workingDir: "/tmp",
        sudo: true,
      });
      expect(result.stdout).toBe("deploying 1.2.3 as root in /tmp\n");
    });
  });

  describe("retries and the breaker", () => {
    it("retries a refused connection until sshd is back: attempts 2", async () => {
      const local = makeStack(transportName, sshd, { executor: testExecutorConfig().with({ retryBackoff: 1_500, maxRetryDelay: 1_500 }) });
      try {
        await sshd.crash();
        setTimeout(() => void sshd.restart(), 500);
        const result = await local.executor.runCommand({ ...plain(), cmd: "echo back" });
        expect(result).toMatchObject({ stdout: "back\n", attempts: 2 });
      } finally {
        await local.close();
      }
    });

    it("never retries an authentication failure: attempts 1", async () => {
      const local = makeStack(transportName, sshd, { transport: { passwordOnly: true, password: "wrong-password-123" } });
      try {
        const error = await local.executor.runCommand({ ...plain(), cmd: "true" }).catch((caught: unknown) => caught);
        expect(error).toBeInstanceOf(AuthenticationError);
        expect(local.executor.stats()).toMatchObject({ attempts: 1, retries: 0 });
      } finally {
        await local.close();
      }
    });

    it("a connection lost mid-command is not re-run unless idempotent", async () => {
      const counter = `/tmp/tunnel-counter-${transportName}-${process.pid}`;
      await rm(counter, { force: true });
      // The first run records itself, then kills the sshd process serving its connection (the nearest sshd ancestor).
      const killSshd = 'p=$$; while [ "$(ps -o comm= -p "$p")" != sshd ]; do p=$(ps -o ppid= -p "$p" | tr -d " "); done; kill -9 "$p"';
      const cmd = `echo run >> ${counter}; if [ "$(wc -l < ${counter})" -lt 2 ]; then ${killSshd}; sleep 5; fi; echo finished`;
      const lost = await stack.executor.runCommand({ ...plain(), cmd }).catch((caught: unknown) => caught);
      expect(TunnelError.is(lost) && lost.code).toBe("CONNECTION_LOST");
      expect((await readFile(counter, "utf8")).trim().split("\n")).toHaveLength(1);
      await rm(counter, { force: true });
      const rerun = await stack.executor.runCommand({ ...plain(), cmd, idempotent: true });
      expect(rerun).toMatchObject({ stdout: "finished\n", attempts: 2 });
      expect((await readFile(counter, "utf8")).trim().split("\n")).toHaveLength(2);
      await rm(counter, { force: true });
    });

    it("opens the breaker after repeated connection failures, fails fast, closes after a good probe", async () => {
      const config = testExecutorConfig().with({ maxRetries: 0, breaker: { failureThreshold: 2, cooldown: 1_000 } });
      const local = makeStack(transportName, sshd, { executor: config });
      const key = `${sshd.users.plain.name}@${sshd.host}:${sshd.port}`;
      try {
        await sshd.crash();
        for (let i = 0; i < 2; i++) {
          const error = await local.executor.runCommand({ ...plain(), cmd: "true" }).catch((caught: unknown) => caught);
          expect(TunnelError.is(error) && error.code).toBe("CONNECT");
        }
        // Fails fast: refused before any attempt, so no connect is tried.
        const attempts = local.executor.stats().attempts;
        await expect(local.executor.runCommand({ ...plain(), cmd: "true" })).rejects.toBeInstanceOf(CircuitOpenError);
        expect(local.executor.stats().attempts).toBe(attempts);
        expect(local.executor.stats().breakers[key]).toBe("open");
        await sshd.restart();
        await new Promise((resolve) => setTimeout(resolve, 1_100));
        expect((await local.executor.runCommand({ ...plain(), cmd: "echo probe" })).stdout).toBe("probe\n");
        expect(local.executor.stats().breakers[key]).toBe("closed");
      } finally {
        await local.close();
      }
    });
  });
});
