/**
 * Secrets stay secret: runs with sudo passwords and password authentication, over both transports, with every
 * tracer capturing everything — the console tracer in JSON and in pretty format (level debug: child spans too)
 * and a recording tracer that keeps raw spans, attributes, events and errors — and every error collected.
 * The passwords (the right ones and wrong ones) appear in none of it, and never on any process's command line:
 * /proc/<pid>/cmdline of every process on the machine is sampled throughout.
 *
 * (The OpenTelemetry SDK is not a dependency of the integration workspace, so the OTel tracer's output is not
 * captured here; its own package tests its redaction.)
 */
import { readdir, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Redactor } from "@tunnel-sh/core";
import { RecordingTracer, startSshd } from "@tunnel-sh/testing";
import type { Sshd } from "@tunnel-sh/testing";
import { ConsoleTracer } from "@tunnel-sh/tracer-console";
import { makeStack, TRANSPORTS, testExecutorConfig } from "./support/transports.js";
import type { Stack } from "./support/transports.js";
import { TeeTracer } from "./support/tee-tracer.js";

/** Every process's argv, sampled every 20 ms until stopped; keeps the command lines holding any secret. */
function sampleArgv(secrets: readonly string[]) {
  const hits: string[] = [];
  let samples = 0;
  let running = true;
  const loop = (async () => {
    while (running) {
      for (const pid of await readdir("/proc").catch(() => [] as string[])) {
        if (!/^\d+$/.test(pid)) continue;
        const cmdline = await readFile(`/proc/${pid}/cmdline`, "utf8").catch(() => "");
        if (secrets.some((secret) => cmdline.includes(secret))) hits.push(cmdline.replace(/\0/g, " "));
      }
      samples++;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  })();
  return {
    stop: async () => {
      running = false;
      await loop;
      return { hits, samples };
    },
  };
}

/** Everything an error carries that a caller might print or log: message, stack, JSON, causes, attempt errors. */
function describeError(error: unknown, depth = 0): string {
  if (depth > 4 || error === undefined || error === null) return "";
  if (typeof error !== "object") return String(error);
  const record = error as { message?: unknown; stack?: unknown; cause?: unknown; errors?: unknown; toJSON?: () => unknown };
  const parts = [String(error), String(record.message), String(record.stack)];
  try {
    parts.push(JSON.stringify(error));
  } catch {
    // circular: the other parts still count
  }
  for (const [key, value] of Object.entries(error)) if (typeof value === "string") parts.push(`${key}=${value}`);
  parts.push(describeError(record.cause, depth + 1));
  if (Array.isArray(record.errors)) for (const inner of record.errors) parts.push(describeError(inner, depth + 1));
  return parts.join("\n");
}

describe.each(TRANSPORTS)("secrets over %s", (name) => {
  let sshd: Sshd;
  const stacks: Stack[] = [];
  let folder: string;

  beforeAll(async () => {
    sshd = await startSshd({ usePam: false });
    folder = join(sshd.dir, "secrets");
    await import("node:fs/promises").then((fs) => fs.mkdir(folder, { recursive: true }));
  });
  afterAll(async () => {
    for (const stack of stacks) await stack.close();
    await sshd?.stop();
  });

  it("sudo passwords and login passwords appear in no trace, error, result or process argv", async () => {
    const sudoPassword = sshd.users.pwsudo.password;
    const loginPassword = sshd.users.plain.password;
    const wrongSudo = `wrong-sudo-${name}-9f3k2`;
    const wrongLogin = `wrong-login-${name}-7q1x8`;
    const secrets = [sudoPassword, loginPassword, wrongSudo, wrongLogin];

    let json = "";
    let pretty = "";
    const recording = new RecordingTracer();
    // Login passwords are deliberately not registered: no tunnel package may put one anywhere in the first place.
    const redactor = new Redactor();
    const tracer = new TeeTracer([
      new ConsoleTracer({ stream: { write: (text: string) => void (json += text) }, format: "json", level: "debug", redactor }),
      new ConsoleTracer({ stream: { write: (text: string) => void (pretty += text) }, format: "pretty", level: "debug", colors: false, redactor }),
      recording,
    ]);
    const options = { tracer, executorOptions: { redactor }, executor: testExecutorConfig().with({ sudoTimeout: 5_000 }) };
    const keyStack = makeStack(name, sshd, options);
    const passwordStack = makeStack(name, sshd, { ...options, transport: { passwordOnly: true, password: loginPassword } });
    const wrongLoginStack = makeStack(name, sshd, { ...options, transport: { passwordOnly: true, password: wrongLogin } });
    stacks.push(keyStack, passwordStack, wrongLoginStack);
    const pwsudo = { host: sshd.host, port: sshd.port, user: sshd.users.pwsudo.name };
    const plain = { host: sshd.host, port: sshd.port, user: sshd.users.plain.name };
    const local = join(folder, `upload-${name}.txt`);
    await writeFile(local, "payload\n");

    const outcomes: unknown[] = [];
    const settle = async (operation: Promise<unknown>) => outcomes.push(await operation.catch((error: unknown) => error));
    const sampler = sampleArgv(secrets);
    let argv: { hits: string[]; samples: number };
    try {
      // Password login: a command, a script, an upload.
      await settle(passwordStack.executor.runCommand({ ...plain, cmd: "echo login-ok" }));
      await settle(passwordStack.executor.runScript({ ...plain, content: "#!/bin/sh\necho script-ok" }));
      await settle(
        passwordStack.executor.transferFile({ ...plain, direction: "upload", source: local, destination: `/tmp/tunnel-secrets-${name}-${process.pid}.txt` }),
      );
      // A wrong login password.
      await settle(wrongLoginStack.executor.runCommand({ ...plain, cmd: "true" }));
      // sudo with its password: a command, a script, a transfer owned through sudo, a timeout under sudo (its
      // clean-up runs sudo again), and a wrong sudo password.
      await settle(keyStack.executor.runCommand({ ...pwsudo, cmd: "id -u", sudo: { password: sudoPassword } }));
      await settle(keyStack.executor.runScript({ ...pwsudo, content: "id -un", sudo: { password: sudoPassword, user: sshd.users.other.name } }));
      await settle(
        keyStack.executor.transferFile({
          ...pwsudo,
          direction: "upload",
          source: local,
          destination: `/tmp/tunnel-secrets-sudo-${name}-${process.pid}.txt`,
          owner: sshd.users.other.name,
          sudo: { password: sudoPassword },
        }),
      );
      await settle(keyStack.executor.runCommand({ ...pwsudo, cmd: "sleep 20", sudo: { password: sudoPassword }, timeout: 1_500 }));
      await settle(keyStack.executor.runCommand({ ...pwsudo, cmd: "id -u", sudo: { password: wrongSudo } }));
      // sudo with a password on a command that fails, with output mentioning a prompt.
      await settle(keyStack.executor.runCommand({ ...pwsudo, cmd: "echo Password: >&2; exit 3", sudo: { password: sudoPassword }, check: true }));
    } finally {
      argv = await sampler.stop();
    }
    await rm(`/tmp/tunnel-secrets-${name}-${process.pid}.txt`, { force: true });
    await rm(`/tmp/tunnel-secrets-sudo-${name}-${process.pid}.txt`, { force: true });

    // The runs did what they should (so the secrets really went through every path).
    expect(outcomes[0]).toMatchObject({ stdout: "login-ok\n" });
    expect(outcomes[1]).toMatchObject({ stdout: "script-ok\n" });
    expect(outcomes[2]).toMatchObject({ files: 1 });
    expect(outcomes[3]).toMatchObject({ code: "AUTHENTICATION" });
    expect(outcomes[4]).toMatchObject({ stdout: "0\n", exitCode: 0 });
    expect(outcomes[5]).toMatchObject({ stdout: `${sshd.users.other.name}\n` });
    expect(outcomes[6]).toMatchObject({ files: 1 });
    expect(outcomes[7]).toMatchObject({ code: "TIMEOUT" });
    expect(outcomes[8]).toMatchObject({ code: "SUDO", reason: "wrong-password" });
    expect(outcomes[9]).toMatchObject({ code: "COMMAND_FAILED" });
    expect(argv.samples).toBeGreaterThan(10);
    expect(json.split("\n").filter(Boolean).length).toBeGreaterThan(10);
    expect(pretty).toContain("echo login-ok");

    const everything = {
      json,
      pretty,
      recorded: JSON.stringify(
        recording.spans.map((span) => ({
          name: span.name,
          attributes: span.attributes,
          events: span.events,
          errors: span.errors.map((error) => describeError(error)),
        })),
      ),
      outcomes: outcomes.map((outcome) => (outcome instanceof Error ? describeError(outcome) : JSON.stringify(outcome))).join("\n"),
    };
    for (const secret of secrets) {
      for (const [where, text] of Object.entries(everything)) expect(text.includes(secret), `${where} holds a secret`).toBe(false);
    }
    expect(argv.hits).toEqual([]);
  }, 120_000);
});
