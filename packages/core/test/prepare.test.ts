import { chmod, mkdir, mkdtemp, readFile, realpath, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { inspect } from "node:util";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AWKWARD_SHELL_WORDS as AWKWARD } from "@tunnel-sh/testing";
import { ValidationError } from "../src/errors.js";
import { quote } from "../src/quote.js";
import { runChild } from "./support/run-child.js";
import { OWN_PROCESS_GROUP_OF_ARGUMENT } from "../src/remote/process-group.js";
import {
  MAX_COMMAND_BYTES,
  PREPARATION_EXIT_CODE,
  createNonce,
  detectPreparationFailure,
  preparationMarker,
  prepareCommand,
  prepareScriptCommand,
  scriptInterpreter,
  sudoPrompt,
  sudoGateLine,
  sudoReadyToken,
} from "../src/prepare.js";

interface Outcome {
  readonly exitCode: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs a prepared command the way sshd would: `<login shell> -c <command>`. */
async function sh(command: string, options: { env?: NodeJS.ProcessEnv; cwd?: string; stdin?: string; shell?: string } = {}): Promise<Outcome> {
  const { code, stdout, stderr } = await runChild([options.shell ?? "/bin/sh", "-c", command], {
    env: options.env ?? process.env,
    // In the scratch folder, so even a quoting bug's stray redirection cannot litter the package.
    cwd: options.cwd ?? scratch,
    ...(options.stdin !== undefined ? { stdin: options.stdin } : {}),
  });
  // runProcess strips the start token every prepared command prints first; so does this.
  return { exitCode: code, stdout: stdout.toString("utf8"), stderr: stderr.replace(START, "") };
}

const START = /\[tunnel-start-[A-Za-z0-9]+\]/g;

/** The script after the start token's `printf`. */
function afterStart(command: string): string {
  const start = /^printf "\[tunnel-start-[A-Za-z0-9]+\]" >&2; /.exec(command);
  expect(start).not.toBeNull();
  return command.slice(start?.[0].length ?? 0);
}

/**
 * Runs each prepared command with `/bin/sh -c`, all from one outer shell (a Node spawn per case would make the
 * property tests slow), and returns each command's stdout and exit code. The outer stderr must stay empty.
 */
async function shEach(commands: readonly string[], env?: NodeJS.ProcessEnv): Promise<Array<{ exitCode: number; stdout: string }>> {
  const separator = `--tunnel-test-${createNonce()}--`;
  const script = commands.map((command) => `/bin/sh -c ${quote(command)}; printf '%s%s%s' ${separator} "$?" ${separator}`).join("\n");
  const outcome = await sh(script, env ? { env } : {});
  expect(outcome.stderr).toBe("");
  const parts = outcome.stdout.split(separator);
  return commands.map((_command, index) => ({ stdout: parts[index * 2] as string, exitCode: Number(parts[index * 2 + 1]) }));
}

const wellFormed = (value: string) => !value.includes("\0") && Buffer.from(value, "utf8").toString("utf8") === value;
const awkwardString = fc
  .array(fc.oneof(fc.constantFrom(...AWKWARD), fc.string({ unit: "binary", maxLength: 6 })), { maxLength: 8 })
  .map((parts) => parts.join(""))
  .filter(wellFormed);
const envName = fc
  .stringMatching(/^[A-Za-z_][A-Za-z0-9_]{0,12}$/)
  .filter((name) => !["PATH", "IFS", "PS4", "ENV", "PWD", "OLDPWD", "HOME", "CDPATH"].includes(name) && !name.startsWith("BASH"));

const NONCE = "0123abcd4567ef89";
let scratch: string;
let fakeSudoDir: string;

/**
 * A stand-in for sudo on PATH that behaves like the real one where preparation depends on it: options
 * `-n`, `-S`, `-p PROMPT`, `-u USER`, `--`; `-S` prints the prompt to stderr without a newline and reads one line;
 * `-n` fails with sudo's message when a password is configured; the command runs with a reset environment
 * (`env -i`, as sudo's env_reset). It logs its argv, one word per line, to prove the password is never there.
 */
const FAKE_SUDO = `#!/bin/sh
printf '%s\\n' "$@" >> "$FAKE_SUDO_ARGV"
mode=; prompt=; user=root
while [ $# -gt 0 ]; do
  case "$1" in
    -n) mode=n; shift ;;
    -S) mode=S; shift ;;
    -p) prompt=$2; shift 2 ;;
    -u) user=$2; shift 2 ;;
    --) shift; break ;;
    *) echo "fake-sudo: unexpected $1" >&2; exit 64 ;;
  esac
done
if [ "$mode" = n ] && [ -n "$FAKE_SUDO_PASSWORD" ]; then echo "sudo: a password is required" >&2; exit 1; fi
if [ "$mode" = S ]; then
  printf '%s' "$prompt" >&2
  IFS= read -r answer
  if [ "$answer" != "$FAKE_SUDO_PASSWORD" ]; then echo "Sorry, try again." >&2; exit 1; fi
fi
exec env -i PATH=/usr/bin:/bin FAKE_SUDO_USER="$user" "$@"
`;

beforeAll(async () => {
  scratch = await realpath(await mkdtemp(join(tmpdir(), "tunnel-prepare-")));
  fakeSudoDir = join(scratch, "bin");
  await mkdir(fakeSudoDir);
  await writeFile(join(fakeSudoDir, "sudo"), FAKE_SUDO);
  await chmod(join(fakeSudoDir, "sudo"), 0o755);
});

afterAll(async () => {
  await rm(scratch, { recursive: true, force: true });
});

function fakeSudoEnv(password = ""): NodeJS.ProcessEnv {
  return {
    PATH: `${fakeSudoDir}:/usr/bin:/bin`,
    FAKE_SUDO_PASSWORD: password,
    FAKE_SUDO_ARGV: join(scratch, "sudo-argv.log"),
    // This must not leak into the sudo'd command: env_reset drops it.
    LEAKY: "from-the-login-environment",
  };
}

describe("prepareCommand without sudo", () => {
  it("passes a bare command through unchanged", () => {
    expect(prepareCommand({ cmd: "uptime; echo 'x'" }, { nonce: NONCE })).toEqual({
      command: `printf "[tunnel-start-${NONCE}]" >&2; uptime; echo 'x'`,
      start: `[tunnel-start-${NONCE}]`,
      nonce: NONCE,
    });
  });

  it("enters the working dir first, then exports env, then runs the command, one line each", () => {
    const prepared = prepareCommand({ cmd: "make", env: { A: "1", B: "two words" }, workingDir: "/srv/app" }, { nonce: NONCE });
    const lines = afterStart(prepared.command).split("\n");
    expect(lines).toHaveLength(4);
    expect(lines[0]).toMatch(/^CDPATH= cd -- \/srv\/app \|\| /);
    expect(lines[0]).toContain(`exit ${PREPARATION_EXIT_CODE}`);
    expect(lines.slice(1)).toEqual(["export A=1", "export B='two words'", "make"]);
    expect(prepared.sudo).toBeUndefined();
  });

  it("uses a fresh random nonce by default", () => {
    const first = prepareCommand({ cmd: "true" }).nonce;
    expect(first).toMatch(/^[0-9a-f]{16}$/);
    expect(prepareCommand({ cmd: "true" }).nonce).not.toBe(first);
    expect(createNonce()).toMatch(/^[0-9a-f]{16}$/);
  });

  it.each([
    [{ cmd: "" }, "cmd"],
    [{ cmd: "a\0" }, "cmd"],
    [{ cmd: "true", env: { "BAD-NAME": "x" } }, "env"],
    [{ cmd: "true", env: { A: "x\0" } }, "env.A"],
    [{ cmd: "true", workingDir: "" }, "workingDir"],
    [{ cmd: "true", sudo: { password: "a\nb" } }, "sudo.password"],
  ])("refuses to prepare %j", (command, field) => {
    expect(() => prepareCommand(command)).toThrow(ValidationError);
    try {
      prepareCommand(command);
    } catch (error) {
      expect((error as ValidationError).field).toBe(field);
    }
  });

  it("refuses a malformed nonce", () => {
    expect(() => prepareCommand({ cmd: "true" }, { nonce: "'; reboot" })).toThrow(/nonce/);
    expect(() => prepareCommand({ cmd: "true" }, { nonce: "short" })).toThrow(/nonce/);
  });

  it("round-trips arbitrary env values exactly through /bin/sh", async () => {
    const envs = fc.array(fc.dictionary(envName, awkwardString, { minKeys: 1, maxKeys: 4 }), { minLength: 1, maxLength: 8 });
    await fc.assert(
      fc.asyncProperty(envs, async (batch) => {
        const commands = batch.map((env) => {
          const cmd = `printf '%s\\0' ${Object.keys(env)
            .map((name) => `"$${name}"`)
            .join(" ")}`;
          return prepareCommand({ cmd, env }).command;
        });
        const outcomes = await shEach(commands);
        batch.forEach((env, index) => {
          expect(outcomes[index]?.exitCode).toBe(0);
          expect(outcomes[index]?.stdout.split("\0").slice(0, -1)).toEqual(Object.values(env));
        });
      }),
      { numRuns: 25 },
    );
  });

  it("exports env to the processes the command starts", async () => {
    const value = "a 'b' \"c\" $d `e`\nf";
    const { stdout } = await sh(prepareCommand({ cmd: "/bin/sh -c 'printf %s \"$CHILD\"'", env: { CHILD: value } }).command);
    expect(stdout).toBe(value);
  });

  it("round-trips arbitrary working dirs exactly (cd, then pwd -P)", async () => {
    let index = 0;
    const dirName = awkwardString.filter((name) => name.length > 0 && !name.includes("/") && name !== "." && name !== ".." && Buffer.byteLength(name) < 200);
    await fc.assert(
      fc.asyncProperty(fc.array(dirName, { minLength: 1, maxLength: 8 }), async (names) => {
        const dirs = names.map((name) => join(scratch, `cwd-${index++}`, name));
        for (const dir of dirs) await mkdir(dir, { recursive: true });
        const outcomes = await shEach(dirs.map((dir) => prepareCommand({ cmd: "pwd -P", workingDir: dir }).command));
        expect(outcomes).toEqual(dirs.map((dir) => ({ exitCode: 0, stdout: `${dir}\n` })));
      }),
      { numRuns: 20 },
    );
  });

  it("fails before the command runs when the working dir is missing, with exit 97 and the nonce marker", async () => {
    const missing = join(scratch, "no such dir");
    const prepared = prepareCommand({ cmd: "echo RAN", workingDir: missing }, { nonce: NONCE });
    const outcome = await sh(prepared.command);
    expect(outcome.exitCode).toBe(PREPARATION_EXIT_CODE);
    expect(outcome.stdout).toBe("");
    expect(outcome.stderr).toContain(missing);
    expect(outcome.stderr).toContain(preparationMarker(NONCE, "working-dir"));
    expect(detectPreparationFailure(prepared, outcome)).toBe("working-dir");
  });

  it("does not mistake a command's own exit 97 (or another command's marker) for a preparation failure", async () => {
    const prepared = prepareCommand({ cmd: `echo '${preparationMarker("ffffffffffffffff", "working-dir")}' >&2; exit 97` });
    const outcome = await sh(prepared.command);
    expect(outcome.exitCode).toBe(97);
    expect(detectPreparationFailure(prepared, outcome)).toBeUndefined();
    expect(detectPreparationFailure(prepared, { exitCode: 0, stderr: preparationMarker(prepared.nonce, "working-dir") })).toBeUndefined();
  });

  it("reads ~ and ~/rest as the home directory and keeps the rest literal", async () => {
    const home = join(scratch, "home $USER");
    await mkdir(join(home, "my app*"), { recursive: true });
    const env = { ...process.env, HOME: home };
    expect((await sh(prepareCommand({ cmd: "pwd -P", workingDir: "~" }).command, { env })).stdout).toBe(`${home}\n`);
    expect((await sh(prepareCommand({ cmd: "pwd -P", workingDir: "~/my app*" }).command, { env })).stdout).toBe(`${home}/my app*\n`);
    // env.HOME is exported after the cd, so it does not move `~`.
    const moved = await sh(prepareCommand({ cmd: "pwd -P", workingDir: "~", env: { HOME: "/" } }).command, { env });
    expect(moved.stdout).toBe(`${home}\n`);
  });

  it("fails on ~ when HOME is empty instead of staying where it is", async () => {
    const prepared = prepareCommand({ cmd: "echo RAN", workingDir: "~" });
    const outcome = await sh(prepared.command, { env: { ...process.env, HOME: "" }, cwd: scratch });
    expect(outcome.stdout).toBe("");
    expect(detectPreparationFailure(prepared, outcome)).toBe("working-dir");
  });

  it("treats a ~ that is not leading, or ~user, literally", async () => {
    const literal = join(scratch, "~root");
    await mkdir(literal, { recursive: true });
    const { stdout } = await sh(prepareCommand({ cmd: "pwd -P", workingDir: "~root" }).command, { cwd: scratch });
    expect(stdout).toBe(`${literal}\n`);
  });

  it("ignores CDPATH: a relative dir is relative to the start dir and cd prints nothing", async () => {
    await mkdir(join(scratch, "start", "sub"), { recursive: true });
    await mkdir(join(scratch, "elsewhere", "sub"), { recursive: true });
    const { stdout } = await sh(prepareCommand({ cmd: "pwd -P", workingDir: "sub" }).command, {
      cwd: join(scratch, "start"),
      env: { ...process.env, CDPATH: join(scratch, "elsewhere") },
      shell: "/bin/bash",
    });
    expect(stdout).toBe(`${join(scratch, "start", "sub")}\n`);
  });

  it("works the same under bash as the login shell", async () => {
    const dir = join(scratch, "bash dir 'q'");
    await mkdir(dir, { recursive: true });
    const prepared = prepareCommand({ cmd: 'printf "%s|" "$V" "$(pwd -P)"', env: { V: "x'y\"z$`\\" }, workingDir: dir });
    expect((await sh(prepared.command, { shell: "/bin/bash" })).stdout).toBe(`x'y"z$\`\\|${dir}|`);
  });
});

describe("prepareCommand with a shell", () => {
  it("hands cmd to that interpreter after the working dir and env, checking first that it exists", async () => {
    const prepared = prepareCommand(
      { cmd: 'echo "${BASH_VERSION:+bash} $V $(pwd -P)"', shell: "bash", env: { V: "v" }, workingDir: scratch },
      { nonce: NONCE },
    );
    expect(afterStart(prepared.command).split("\n").slice(-2)).toEqual([
      `command -v -- bash >/dev/null 2>&1 || { printf '%s\\n' 'tunnel[${NONCE}]: interpreter not found' >&2; exit 97; }`,
      `exec bash -c 'echo "\${BASH_VERSION:+bash} $V $(pwd -P)"'`,
    ]);
    expect(await sh(prepared.command)).toEqual({ exitCode: 0, stdout: `bash v ${scratch}\n`, stderr: "" });
  });

  it("stops with the interpreter marker when the shell is missing", async () => {
    const prepared = prepareCommand({ cmd: "echo RAN", shell: "no-such-shell-here" });
    const outcome = await sh(prepared.command);
    expect(outcome.stdout).toBe("");
    expect(detectPreparationFailure(prepared, outcome)).toBe("interpreter");
  });

  it("refuses a shell that is not a program name or path", () => {
    expect(() => prepareCommand({ cmd: "true", shell: "bash -x" })).toThrow(/^shell: /);
  });
});

describe("the command line limit", () => {
  it("refuses a prepared command past MAX_COMMAND_BYTES, naming what made it large", () => {
    const big = "x".repeat(MAX_COMMAND_BYTES);
    const field = (prepare: () => unknown): string | undefined => {
      try {
        prepare();
        return undefined;
      } catch (error) {
        return error instanceof ValidationError ? error.field : String(error);
      }
    };
    expect(field(() => prepareCommand({ cmd: "true", env: { BIG: big } }))).toBe("env");
    expect(field(() => prepareCommand({ cmd: `echo ${big}`, sudo: true }))).toBe("cmd");
    // Multi-byte characters count as the bytes they take.
    expect(() => prepareCommand({ cmd: "true", env: { BIG: "é".repeat(MAX_COMMAND_BYTES / 2) } })).toThrow(ValidationError);
    expect(() => prepareCommand({ cmd: "true", env: { BIG: "x".repeat(MAX_COMMAND_BYTES - 1024) } })).not.toThrow();
  });
});

describe("prepareCommand with sudo", () => {
  it("uses sudo -n without a password, so sudo never waits for one", () => {
    const prepared = prepareCommand({ cmd: "id -u", sudo: true }, { nonce: NONCE });
    expect(afterStart(prepared.command).startsWith("exec sudo -n -- /bin/sh -c ")).toBe(true);
    expect(prepared.command).not.toContain(" -S ");
    expect(prepared.sudo).toEqual({ prompt: sudoPrompt(NONCE), ready: sudoReadyToken(NONCE), gate: sudoGateLine(NONCE) });
    expect(prepared.sudo?.password).toBeUndefined();
  });

  it("adds -u for another account", () => {
    expect(afterStart(prepareCommand({ cmd: "id", sudo: { user: "postgres" } }).command)).toMatch(/^exec sudo -n -u postgres -- \/bin\/sh -c /);
    expect(afterStart(prepareCommand({ cmd: "id", sudo: { user: "#1001" } }).command)).toMatch(/^exec sudo -n -u '#1001' -- /);
    expect(afterStart(prepareCommand({ cmd: "id", sudo: { user: "1001" } }).command)).toMatch(/^exec sudo -n -u '#1001' -- /);
    expect(afterStart(prepareCommand({ cmd: "id", sudo: false }).command)).toBe("id");
  });

  it("uses sudo -S with the nonce prompt when a password is given, and never puts the password on the command line", () => {
    const password = "s3cret 'with' $pecial \"chars\"";
    const prepared = prepareCommand({ cmd: "id -u", sudo: { user: "root", password } }, { nonce: NONCE });
    expect(afterStart(prepared.command).startsWith(`exec sudo -S -p '[tunnel-sudo-${NONCE}]' -u root -- /bin/sh -c `)).toBe(true);
    // sudo's own options (before `--`): no -n.
    expect(afterStart(prepared.command).split(" -- ")[0]).not.toMatch(/ -n( |$)/);
    expect(prepared.sudo).toMatchObject({ prompt: `[tunnel-sudo-${NONCE}]`, ready: `[tunnel-ready-${NONCE}]`, password });
    for (const fragment of [password, "s3cret", "pecial"]) expect(prepared.command).not.toContain(fragment);
  });

  it("redacts the password in JSON and util.inspect output", () => {
    const password = "hunter2-topsecret";
    const prepared = prepareCommand({ cmd: "true", sudo: { password } });
    expect(JSON.stringify(prepared)).not.toContain(password);
    expect(JSON.stringify(prepared)).toContain("[redacted]");
    expect(inspect(prepared, { depth: 5 })).not.toContain(password);
    expect(prepared.sudo?.password).toBe(password);
  });

  it("puts cd, env and the command inside the shell that sudo runs, after the ready token and the gate", () => {
    const prepared = prepareCommand({ cmd: "make install", sudo: { user: "bob" }, env: { A: "1" }, workingDir: "/srv" }, { nonce: NONCE });
    const inner =
      `tunnel_tty=$( [ -t 0 ] && stty -g 2>/dev/null && stty -echo 2>/dev/null )\n` +
      `printf '%s' '[tunnel-ready-${NONCE}]' >&2\n` +
      `IFS= read -r tunnel_gate && [ "$tunnel_gate" = go-${NONCE} ] || exit 125\n` +
      `[ -z "$tunnel_tty" ] || stty "$tunnel_tty" 2>/dev/null\n` +
      `unset tunnel_tty tunnel_gate\n`;
    const expectedScript = `${inner}CDPATH= cd -- /srv || { printf '%s\\n' 'tunnel[${NONCE}]: cannot change directory' >&2; exit 97; }\nexport A=1\nmake install`;
    const quoted = (text: string) => `'${text.replace(/'/g, `'\\''`)}'`;
    expect(afterStart(prepared.command)).toBe(`exec sudo -n -u bob -- /bin/sh -c ${quoted(OWN_PROCESS_GROUP_OF_ARGUMENT)} sh ${quoted(expectedScript)}`);
  });

  it("keeps arbitrary env values across sudo's environment reset (fake sudo with env -i)", async () => {
    const envs = fc.array(fc.dictionary(envName, awkwardString, { minKeys: 1, maxKeys: 3 }), { minLength: 1, maxLength: 6 });
    await fc.assert(
      fc.asyncProperty(envs, async (batch) => {
        const commands = batch.map((env) => {
          const cmd = `printf '%s\\0' "$LEAKY" "$FAKE_SUDO_USER" ${Object.keys(env)
            .map((name) => `"$${name}"`)
            .join(" ")}`;
          // The ready token goes to stderr; send it to stdout here so the outer stderr stays empty.
          return `printf '%s\\n' ${sudoGateLine(NONCE)} | { ${prepareCommand({ cmd, env, sudo: { user: "nobody" } }, { nonce: NONCE }).command}; } 2>&1`;
        });
        const outcomes = await shEach(commands, fakeSudoEnv());
        batch.forEach((env, index) => {
          expect(outcomes[index]?.exitCode).toBe(0);
          // The start token comes first (stderr, merged here), then the ready token.
          const stdout = (outcomes[index]?.stdout as string).replace(START, "");
          expect(stdout.startsWith(sudoReadyToken(NONCE))).toBe(true);
          const values = stdout.slice(sudoReadyToken(NONCE).length).split("\0").slice(0, -1);
          expect(values).toEqual(["", "nobody", ...Object.values(env)]);
        });
      }),
      { numRuns: 20 },
    );
  });

  it("answers the prompt from stdin: prompt, then ready token, then the command's output", async () => {
    const password = "pw 'quoted' $x";
    const argvLog = fakeSudoEnv().FAKE_SUDO_ARGV as string;
    await rm(argvLog, { force: true });
    const dir = join(scratch, "sudo dir");
    await mkdir(dir, { recursive: true });
    const prepared = prepareCommand(
      { cmd: 'printf "%s|%s" "$GREETING" "$(pwd -P)"; cat', sudo: { password }, env: { GREETING: "hi there" }, workingDir: dir },
      { nonce: NONCE },
    );
    const outcome = await sh(prepared.command, { env: fakeSudoEnv(password), stdin: `${password}\n${prepared.sudo?.gate}\nuser stdin` });
    expect(outcome.exitCode).toBe(0);
    expect(outcome.stderr).toBe(`[tunnel-sudo-${NONCE}][tunnel-ready-${NONCE}]`);
    expect(outcome.stdout).toBe(`hi there|${dir}user stdin`);
    expect(await readFile(argvLog, "utf8")).not.toContain("quoted");
  });

  it("fails fast with sudo's message when a password is needed but none was given", async () => {
    const prepared = prepareCommand({ cmd: "echo RAN", sudo: true });
    const outcome = await sh(prepared.command, { env: fakeSudoEnv("needed") });
    expect(outcome.exitCode).toBe(1);
    expect(outcome.stdout).toBe("");
    expect(outcome.stderr).toContain("a password is required");
    expect(outcome.stderr).not.toContain(prepared.sudo?.ready);
  });

  it("reports a missing working dir under sudo after the ready token", async () => {
    const prepared = prepareCommand({ cmd: "echo RAN", sudo: true, workingDir: join(scratch, "gone") });
    const outcome = await sh(prepared.command, { env: fakeSudoEnv(), stdin: `${prepared.sudo?.gate}\n` });
    expect(outcome.stdout).toBe("");
    expect(outcome.stderr.startsWith(prepared.sudo?.ready as string)).toBe(true);
    expect(detectPreparationFailure(prepared, outcome)).toBe("working-dir");
  });

  it("runs nothing of the request until the gate line arrives: a closed stdin or another line exits 125", async () => {
    const marker = join(scratch, "gate-marker");
    for (const stdin of ["", "go\n", `${sudoGateLine("ffffffffffffffff")}\n`]) {
      const prepared = prepareCommand({ cmd: `touch ${quote(marker)}`, sudo: true, env: { A: "1" } });
      const outcome = await sh(prepared.command, { env: fakeSudoEnv(), stdin });
      expect(outcome).toMatchObject({ exitCode: 125, stdout: "", stderr: prepared.sudo?.ready });
      await expect(stat(marker)).rejects.toThrow();
    }
    const prepared = prepareCommand({ cmd: `touch ${quote(marker)}; cat`, sudo: true });
    const outcome = await sh(prepared.command, { env: fakeSudoEnv(), stdin: `${prepared.sudo?.gate}\nafter the gate` });
    expect(outcome).toMatchObject({ exitCode: 0, stdout: "after the gate" });
    await expect(stat(marker)).resolves.toBeDefined();
  });
});

describe("scriptInterpreter", () => {
  it.each([
    [{ content: "echo hi" }, ["/bin/sh"]],
    [{ content: "#!/bin/bash\necho hi" }, ["/bin/bash"]],
    [{ content: "#! /usr/bin/env python3\nprint(1)" }, ["/usr/bin/env", "python3"]],
    [{ content: "#!/bin/bash -e -u  \r\necho" }, ["/bin/bash", "-e -u"]],
    [{ content: "#!/bin/sh" }, ["/bin/sh"]],
    [{ content: "#!\necho" }, ["/bin/sh"]],
    [{ content: "#!/bin/bash\necho", interpreter: "python3" }, ["python3"]],
  ])("picks the interpreter for %j", (script, expected) => {
    expect(scriptInterpreter(script)).toEqual(expected);
  });

  it("validates an explicit interpreter", () => {
    expect(() => scriptInterpreter({ content: "x", interpreter: "bash -e" })).toThrow(ValidationError);
  });

  it("rejects a NUL byte in the shebang line", () => {
    expect(() => scriptInterpreter({ content: "#!/bin/sh\0x\necho" })).toThrow(/shebang/);
  });
});

describe("prepareScriptCommand", () => {
  it("checks the interpreter, then execs interpreter, script path and quoted args", () => {
    const prepared = prepareScriptCommand({ content: "x", interpreter: "bash", args: ["a b", "-n"] }, "/tmp/tunnel.X/script", { nonce: NONCE });
    const lines = afterStart(prepared.command).split("\n");
    expect(lines).toEqual([
      `command -v -- bash >/dev/null 2>&1 || { printf '%s\\n' 'tunnel[${NONCE}]: interpreter not found' >&2; exit 97; }`,
      "exec bash /tmp/tunnel.X/script 'a b' -n",
    ]);
  });

  it("checks an absolute interpreter with test -x", () => {
    const prepared = prepareScriptCommand({ content: "#!/usr/bin/env python3\n" }, "/tmp/s", { nonce: NONCE });
    expect(afterStart(prepared.command).split("\n")[0]).toMatch(/^\[ -x \/usr\/bin\/env \] \|\| /);
    expect(afterStart(prepared.command).split("\n")[1]).toBe("exec /usr/bin/env python3 /tmp/s");
  });

  it("round-trips arbitrary args exactly into the script's $@", async () => {
    const path = join(scratch, "args script.sh");
    await writeFile(path, `printf '%s\\0' "$@"\n`);
    const argLists = fc.array(fc.array(awkwardString, { minLength: 1, maxLength: 5 }), { minLength: 1, maxLength: 8 });
    await fc.assert(
      fc.asyncProperty(argLists, async (batch) => {
        const outcomes = await shEach(batch.map((args) => prepareScriptCommand({ content: "x", args }, path).command));
        expect(outcomes).toEqual(batch.map((args) => ({ exitCode: 0, stdout: args.map((arg) => `${arg}\0`).join("") })));
      }),
      { numRuns: 20 },
    );
  });

  it("runs a shebang script with env, working dir and args", async () => {
    const path = join(scratch, "deploy.sh");
    await writeFile(path, '#!/bin/bash\nset -e\nprintf "%s|%s|%s" "$DEPLOY_ENV" "$(pwd -P)" "$1"\n');
    const prepared = prepareScriptCommand(
      { content: await readFile(path, "utf8"), env: { DEPLOY_ENV: "production" }, workingDir: scratch, args: ["it's"] },
      path,
    );
    const outcome = await sh(prepared.command);
    expect(outcome).toEqual({ exitCode: 0, stdout: `production|${scratch}|it's`, stderr: "" });
  });

  it("stops with the interpreter marker when the interpreter does not exist", async () => {
    const path = join(scratch, "never-run.sh");
    await writeFile(path, "echo RAN\n");
    for (const interpreter of ["no-such-interpreter-xyz", "/no/such/interpreter"]) {
      const prepared = prepareScriptCommand({ content: "echo RAN", interpreter }, path);
      const outcome = await sh(prepared.command);
      expect(outcome.stdout).toBe("");
      expect(outcome.exitCode).toBe(PREPARATION_EXIT_CODE);
      expect(detectPreparationFailure(prepared, outcome)).toBe("interpreter");
    }
  });

  it("looks the interpreter up with the request's PATH", async () => {
    const bin = join(scratch, "custom-bin");
    await mkdir(bin, { recursive: true });
    await writeFile(join(bin, "my-interp"), '#!/bin/sh\necho "my-interp ran $1"\n');
    await chmod(join(bin, "my-interp"), 0o755);
    const prepared = prepareScriptCommand({ content: "x", interpreter: "my-interp", env: { PATH: `${bin}:/usr/bin:/bin` } }, "/the/script");
    expect((await sh(prepared.command)).stdout).toBe("my-interp ran /the/script\n");
  });

  it("wraps a script in sudo like a command", async () => {
    const path = join(scratch, "sudo-script.sh");
    await writeFile(path, 'printf "%s|%s" "$FAKE_SUDO_USER" "$X"\n');
    const prepared = prepareScriptCommand({ content: "x", sudo: { user: "app" }, env: { X: "kept" } }, path);
    expect(afterStart(prepared.command).startsWith("exec sudo -n -u app -- /bin/sh -c ")).toBe(true);
    const outcome = await sh(prepared.command, { env: fakeSudoEnv(), stdin: `${prepared.sudo?.gate}\n` });
    expect(outcome.stdout).toBe("app|kept");
  });

  it("refuses bad args and an empty script path", () => {
    expect(() => prepareScriptCommand({ content: "x", args: ["a\0"] }, "/s")).toThrow(ValidationError);
    expect(() => prepareScriptCommand({ content: "x", args: [1 as never] }, "/s")).toThrow(ValidationError);
    expect(() => prepareScriptCommand({ content: "x" }, "")).toThrow(ValidationError);
  });
});
