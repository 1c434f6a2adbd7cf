// Runs the usage examples of packages/core/README.md, exactly as written there, against a real sshd over both
// transports. Each `<!-- example: name -->` block is wrapped in an async function that receives the variables the
// README's prose names (executor, host, user, port, localFile) and run with console output captured.
import { randomBytes } from "node:crypto";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Fleet } from "@tunnel-sh/core";
import { startSshd } from "@tunnel-sh/testing";
import type { Sshd } from "@tunnel-sh/testing";
import { makeStack, TRANSPORTS } from "./support/transports.js";
import type { Stack } from "./support/transports.js";

const readmePath = fileURLToPath(new URL("../../packages/core/README.md", import.meta.url));

async function readmeExamples(): Promise<Map<string, string>> {
  const text = await readFile(readmePath, "utf8");
  const examples = new Map<string, string>();
  for (const match of text.matchAll(/<!-- example: ([a-z-]+) -->\n```ts\n([\s\S]*?)```/g)) {
    examples.set(match[1] as string, match[2] as string);
  }
  return examples;
}

describe.each(TRANSPORTS)("README examples over %s", (transportName) => {
  let sshd: Sshd;
  let stack: Stack;
  let work: string;
  let examples: Map<string, string>;
  const printed: string[] = [];

  async function run(name: string, localFile = ""): Promise<unknown> {
    const body = examples.get(name);
    if (!body) throw new Error(`the README has no example "${name}"`);
    const file = join(work, `${name}.ts`);
    await writeFile(
      file,
      `export default async function ({ executor, Fleet, host, user, port, localFile, console }) {\n${body}\nreturn typeof result !== "undefined" ? result : typeof transfer !== "undefined" ? transfer : undefined;\n}\n`,
    );
    const module = (await import(file)) as { default: (scope: Record<string, unknown>) => Promise<unknown> };
    return module.default({
      executor: stack.executor,
      Fleet,
      host: sshd.host,
      user: sshd.users.sudo.name,
      port: sshd.port,
      localFile,
      console: { log: (line: string) => printed.push(line) },
    });
  }

  beforeAll(async () => {
    examples = await readmeExamples();
    sshd = await startSshd();
    stack = makeStack(transportName, sshd);
    await mkdir(join(fileURLToPath(new URL(".", import.meta.url)), ".examples"), { recursive: true });
    work = await mkdtemp(join(fileURLToPath(new URL(".", import.meta.url)), ".examples", `${transportName}-`));
  });
  afterAll(async () => {
    await stack?.close();
    await sshd?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it("has the four examples: a command, a script, a transfer, a fleet", () => {
    expect([...examples.keys()]).toEqual(["command", "script", "transfer", "fleet"]);
  });

  it("runs the command example: sudo and env, a non-zero exit as data", async () => {
    const result = (await run("command")) as { exitCode: number; stdout: string; attempts: number };
    // The test server has no systemd: systemctl is missing, which the result reports rather than throws.
    expect(typeof result.exitCode).toBe("number");
    expect(result.attempts).toBe(1);
    expect(printed).toContain(`Exit code: ${result.exitCode}`);
  });

  it("runs the deployment script example", async () => {
    const result = (await run("script")) as { exitCode: number; stdout: string };
    expect(result.stdout).toContain("Starting deployment...");
    expect(result.exitCode).not.toBe(0); // `set -e` stops at the missing systemctl, as it would on a host without it
  });

  it("runs the fleet example: a canary batch, then the rest, with each host's output", async () => {
    printed.length = 0;
    const report = (await run("fleet")) as { ok: number; batches: number[]; hosts: Array<{ name: string; status: string }> };
    expect(report).toMatchObject({ ok: 4, batches: [1, 3] });
    expect(printed.filter((line) => line.includes(": deploying on ")).sort()).toEqual([1, 2, 3, 4].map((n) => `web-${n}: deploying on web-${n}`));
    expect(printed).toContain("4 ok, 0 failed, 0 skipped");
  });

  it("runs the upload example", async () => {
    const localFile = join(await mkdtemp(join(tmpdir(), "tunnel-readme-")), "myapp");
    const data = randomBytes(100_000);
    await writeFile(localFile, data);
    const transfer = (await run("transfer", localFile)) as { bytes: number };
    expect(transfer.bytes).toBe(100_000);
    expect(await readFile("/tmp/myapp-new")).toEqual(data);
    await rm("/tmp/myapp-new", { force: true });
    await rm(join(localFile, ".."), { recursive: true, force: true });
  });
});
