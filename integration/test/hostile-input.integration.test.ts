/**
 * Hostile input, fuzzed with fast-check.
 *
 * 1. Invalid requests to runCommand / runScript / transferFile only ever reject with a ValidationError, before any
 *    network I/O: the transport under the pool records every call, and none is made.
 * 2. Valid requests holding awkward strings (quotes, `$()`, backticks, globs, newlines, control characters,
 *    Unicode, leading dashes) behave exactly: env values, script arguments and working dirs arrive byte for byte
 *    on a real sshd, over both transports.
 */
import { execFileSync } from "node:child_process";
import { rm } from "node:fs/promises";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DefaultExecutorConfig, Executor, ValidationError } from "@tunnel-sh/core";
import type { Command, Script, Transfer } from "@tunnel-sh/core";
import { ConnectionPool, DefaultPoolConfig } from "@tunnel-sh/pool";
import { AWKWARD_SHELL_CHARACTERS, FakeTransport, startSshd } from "@tunnel-sh/testing";
import type { Sshd } from "@tunnel-sh/testing";
import { makeStack, TRANSPORTS } from "./support/transports.js";
import type { Stack } from "./support/transports.js";

/** An executor over a real pool over a transport that records every call and was scripted for none. */
function recordingExecutor() {
  const transport = new FakeTransport({ spawn: { stdout: "" } });
  const pool = new ConnectionPool(transport, DefaultPoolConfig());
  let acquires = 0;
  const acquire = pool.acquire.bind(pool);
  pool.acquire = (...args: Parameters<typeof pool.acquire>) => {
    acquires++;
    return acquire(...args);
  };
  const executor = new Executor(pool, DefaultExecutorConfig().with({ maxRetries: 0 }));
  return { executor, pool, transport, acquires: () => acquires };
}

const notString = fc.oneof(fc.integer(), fc.boolean(), fc.constant(null), fc.constant([]), fc.constant({}), fc.double());
const withNul = fc.tuple(fc.string(), fc.string()).map(([a, b]) => `${a}\0${b}`);
const controlOrSpace = fc.constantFrom(" ", "\t", "\n", "\r", "\u0000", "\u001b", "\u007f", "\u0085", "\u00a0", "\u2028", "\u3000");

const badHost = fc.oneof(
  fc.constant(""),
  fc.string().map((s) => `-${s}`),
  fc.tuple(fc.string({ maxLength: 5 }), controlOrSpace, fc.string({ maxLength: 5 })).map(([a, c, b]) => `h${a}${c}${b}`),
  fc.constantFrom("'", "`", '"', "$", "\\", ";", "&", "<", ">", "|", "(", ")", "{", "}", "@", "/", "[", "]").map((c) => `web${c}1`),
  fc.integer({ min: 1, max: 65535 }).map((port) => `web-1:${port}`),
  fc.constant("h".repeat(256)),
  notString,
);
const badPort = fc.oneof(
  fc.constantFrom(0, -1, 65536, 1.5, Number.NaN, Number.POSITIVE_INFINITY),
  fc.integer({ max: 0 }),
  fc.integer({ min: 65536 }),
  fc.string().map((s) => `${s}22`),
);
const badUser = fc.oneof(
  fc.constant(""),
  fc.string().map((s) => `-${s}`),
  fc.constantFrom(" ", ":", "@", "/", "'", "$", ";", "\n", "\u0000").map((c) => `de${c}ploy`),
  fc.constant("u".repeat(257)),
  notString,
);
const badTimeout = fc.oneof(fc.constantFrom(0, -1, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 31, "1000"), fc.double({ max: 0, noNaN: true }));
const badEnv = fc.oneof(
  fc
    .string()
    .filter((name) => !/^[A-Za-z_][A-Za-z0-9_]*$/.test(name))
    .map((name) => ({ [name]: "value" })),
  withNul.map((value) => ({ GOOD_NAME: value })),
  notString.filter((value) => value !== null).map((value) => ({ GOOD_NAME: value })),
  fc.constantFrom("A=B", 5, [], null).map((value) => value),
);
const badSudo = fc.oneof(
  fc.constantFrom("yes", 1, [], null),
  fc.constant({ password: "" }),
  fc.tuple(fc.string(), fc.constantFrom("\n", "\r", "\0"), fc.string()).map(([a, c, b]) => ({ password: `pw${a}${c}${b}` })),
  fc
    .string()
    .filter((name) => !/^[A-Za-z_][A-Za-z0-9_.-]*\$?$/.test(name) && !/^#?[0-9]+$/.test(name))
    .map((user) => ({ user })),
);
const badPath = fc.oneof(fc.constant(""), withNul, notString);
const badMaxOutput = fc.constantFrom(-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, "10");

type Mutation = readonly [field: string, value: unknown];
const commandMutation: fc.Arbitrary<Mutation> = fc.oneof(
  badHost.map((value) => ["host", value] as const),
  badPort.map((value) => ["port", value] as const),
  badUser.map((value) => ["user", value] as const),
  fc.oneof(fc.constantFrom("", "   ", "\n\t"), withNul, notString).map((value) => ["cmd", value] as const),
  badEnv.map((value) => ["env", value] as const),
  badTimeout.map((value) => ["timeout", value] as const),
  badPath.map((value) => ["workingDir", value] as const),
  badSudo.map((value) => ["sudo", value] as const),
  badMaxOutput.map((value) => ["maxOutputBytes", value] as const),
  fc.constantFrom("yes", 1, null).map((value) => ["idempotent", value] as const),
  fc.constantFrom("stdout", 1, {}).map((value) => ["onStdout", value] as const),
  fc.constantFrom(1, {}, [1, 2]).map((value) => ["stdin", value] as const),
  fc.constantFrom("yes", { rows: 0 }, { cols: 1.5 }, { term: "x term" }).map((value) => ["pty", value] as const),
  fc.constantFrom("not a signal", {}, 1).map((value) => ["signal", value] as const),
);
const scriptMutation: fc.Arbitrary<Mutation> = fc.oneof(
  badHost.map((value) => ["host", value] as const),
  badUser.map((value) => ["user", value] as const),
  fc.oneof(fc.constantFrom("", " \n "), notString).map((value) => ["content", value] as const),
  fc.oneof(fc.constantFrom("", "/", "python -u", "/usr/bin/py thon", "'sh'", "-sh", "..", "sh;id"), withNul).map((value) => ["interpreter", value] as const),
  fc
    .oneof(
      notString.filter((value) => !Array.isArray(value)),
      fc.array(notString, { minLength: 1 }),
      withNul.map((arg) => ["ok", arg]),
    )
    .map((value) => ["args", value] as const),
  badEnv.map((value) => ["env", value] as const),
  badTimeout.map((value) => ["timeout", value] as const),
  badSudo.map((value) => ["sudo", value] as const),
);
const transferMutation: fc.Arbitrary<Mutation> = fc.oneof(
  badHost.map((value) => ["host", value] as const),
  badPort.map((value) => ["port", value] as const),
  badPath.map((value) => ["source", value] as const),
  badPath.map((value) => ["destination", value] as const),
  fc.oneof(fc.constantFrom("up", "sideways", "", "UPLOAD"), notString).map((value) => ["direction", value] as const),
  fc.oneof(fc.constantFrom("0999", "abc", "rwx", "010000", "0o8", "", "-755"), fc.constantFrom(-1, 0o10000, 1.5)).map((value) => ["mode", value] as const),
  fc
    .string()
    .filter((name) => !/^[A-Za-z_][A-Za-z0-9_.-]*\$?$/.test(name) && !/^[0-9]+$/.test(name))
    .map((value) => ["owner", value] as const),
  fc
    .string()
    .filter((name) => !/^[A-Za-z_][A-Za-z0-9_.-]*\$?$/.test(name) && !/^[0-9]+$/.test(name))
    .map((value) => ["group", value] as const),
  fc.constantFrom("always", "", 1).map((value) => ["overwrite", value] as const),
  fc.constantFrom("md5", true, "SHA256").map((value) => ["verify", value] as const),
  fc.constantFrom("yes", 1).map((value) => ["recursive", value] as const),
  badTimeout.map((value) => ["timeout", value] as const),
);

const validCommand: Command = { host: "web-1", port: 22, user: "deploy", cmd: "uptime" };
const validScript: Script = { host: "web-1", user: "deploy", content: "echo hi" };
const validTransfer: Transfer = { host: "web-1", user: "deploy", direction: "upload", source: "/tmp/a", destination: "/tmp/b" };

/** Runs `operation` and asserts it rejected with a ValidationError and touched neither the pool nor the transport. */
async function rejectsBeforeIo(operation: (executor: Executor) => Promise<unknown>): Promise<void> {
  const recording = recordingExecutor();
  const outcome = await operation(recording.executor).then(
    (value) => ({ value }),
    (error: unknown) => ({ error }),
  );
  expect(outcome).toHaveProperty("error");
  const error = (outcome as { error: unknown }).error;
  expect(error).toBeInstanceOf(ValidationError);
  expect(error).toMatchObject({ code: "VALIDATION", phase: "validate", retryable: false });
  expect(recording.acquires()).toBe(0);
  expect(recording.transport.calls).toEqual([]);
  expect(recording.pool.stats().created).toBe(0);
  await recording.pool.close();
}

describe("invalid requests are rejected before any I/O", () => {
  it("runCommand: one bad field in an otherwise valid command", async () => {
    await fc.assert(
      fc.asyncProperty(commandMutation, async ([field, value]) => {
        await rejectsBeforeIo((executor) => executor.runCommand({ ...validCommand, [field]: value } as Command));
      }),
      { numRuns: 300 },
    );
  });

  it("runScript: one bad field in an otherwise valid script", async () => {
    await fc.assert(
      fc.asyncProperty(scriptMutation, async ([field, value]) => {
        await rejectsBeforeIo((executor) => executor.runScript({ ...validScript, [field]: value } as Script));
      }),
      { numRuns: 300 },
    );
  });

  it("transferFile: one bad field in an otherwise valid transfer", async () => {
    await fc.assert(
      fc.asyncProperty(transferMutation, async ([field, value]) => {
        await rejectsBeforeIo((executor) => executor.transferFile({ ...validTransfer, [field]: value } as Transfer));
      }),
      { numRuns: 300 },
    );
  });

  it("any value at all that is not a request (including objects missing host or cmd)", async () => {
    await fc.assert(
      fc.asyncProperty(fc.anything(), fc.constantFrom("runCommand", "runScript", "transferFile"), async (value, method) => {
        fc.pre(!(typeof value === "object" && value !== null && "host" in value));
        await rejectsBeforeIo((executor) => (executor[method] as (request: unknown) => Promise<unknown>).call(executor, value));
      }),
      { numRuns: 300 },
    );
  });

  it("several bad fields at once still yield one ValidationError naming one of them", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(commandMutation, { minLength: 2, maxLength: 5 }), async (mutations) => {
        const request = { ...validCommand, ...Object.fromEntries(mutations) } as Command;
        const recording = recordingExecutor();
        const error = await recording.executor.runCommand(request).catch((caught: unknown) => caught);
        expect(error).toBeInstanceOf(ValidationError);
        const fields = mutations.map(([field]) => field);
        expect(
          fields.some(
            (field) =>
              (error as ValidationError).field === field ||
              (error as ValidationError).field.startsWith(`${field}.`) ||
              (error as ValidationError).field.startsWith(`${field}[`) ||
              ((error as ValidationError).field === "env" && field === "env"),
          ),
        ).toBe(true);
        expect(recording.transport.calls).toEqual([]);
        await recording.pool.close();
      }),
      { numRuns: 150 },
    );
  });
});

/** Strings meant to break quoting: shell syntax, control characters, Unicode, leading dashes. (No NUL: no shell word holds one.) */
const awkwardChar = fc.oneof(fc.constantFrom(...AWKWARD_SHELL_CHARACTERS), fc.string({ unit: "grapheme-ascii", minLength: 1, maxLength: 1 }));
const awkward = fc.oneof(
  fc.string({ unit: awkwardChar, maxLength: 24 }),
  fc.constantFrom("", "--", "-n", "-e", "$(id)", "${HOME}", "`id`", "'; rm -rf ~; '", "\\", "a\nb", "*"),
);
const dirName = fc.string({ unit: awkwardChar, minLength: 1, maxLength: 16 }).filter((name) => name !== "." && name !== ".." && !name.includes("/"));

describe.each(TRANSPORTS)("awkward but valid strings arrive exactly over %s on a real sshd", (name) => {
  let sshd: Sshd;
  let stack: Stack;
  const target = () => ({ host: sshd.host, port: sshd.port, user: sshd.users.plain.name });
  const base = `/tmp/tunnel-hostile-${name}-${process.pid}`;

  beforeAll(async () => {
    sshd = await startSshd({ usePam: false });
    stack = makeStack(name, sshd);
    execFileSync("install", ["-d", "-m", "0755", "-o", sshd.users.plain.name, base]);
  });
  afterAll(async () => {
    await stack?.close();
    await sshd?.stop();
    await rm(base, { recursive: true, force: true });
  });

  it("env values and script arguments round-trip byte for byte", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(awkward, { minLength: 1, maxLength: 6 }), async (values) => {
        const env = Object.fromEntries(values.map((value, index) => [`V_${index}`, value]));
        const command = await stack.executor.runCommand({
          ...target(),
          cmd: values.map((_, index) => `printf '%s\\0' "$V_${index}"`).join("; "),
          env,
        });
        expect(command.stdout.split("\0").slice(0, -1)).toEqual(values);
        const script = await stack.executor.runScript({ ...target(), content: 'for a in "$@"; do printf "%s\\0" "$a"; done', args: values });
        expect(script.stdout.split("\0").slice(0, -1)).toEqual(values);
      }),
      { numRuns: 15 },
    );
  }, 120_000);

  it("working dirs with awkward names are entered exactly", async () => {
    await fc.assert(
      fc.asyncProperty(dirName, async (dir) => {
        const path = `${base}/${dir}`;
        await stack.executor.runCommand({ ...target(), cmd: 'mkdir -p -- "$D"', env: { D: path } });
        // $PWD alone: a name may hold newlines, so nothing else is printed around it.
        const result = await stack.executor.runCommand({ ...target(), cmd: "printf '%s' \"$PWD\"", workingDir: path });
        expect(result.stdout).toBe(path);
      }),
      { numRuns: 10 },
    );
  }, 120_000);
});
