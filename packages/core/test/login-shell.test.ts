import { accessSync, constants } from "node:fs";
import { tmpdir } from "node:os";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ValidationError } from "../src/errors.js";
import { MAX_LOGIN_LINE_LENGTH, encodeForPrintf, loginShellCommand, loginShellLength } from "../src/login-shell.js";
import { quote } from "../src/quote.js";
import { runChild, type ChildOutcome } from "./support/run-child.js";

/** The login shells users have; sshd runs a session's command as `<shell> -c <line>`. */
const SHELLS = ["/bin/sh", "/bin/bash", "/bin/dash", "/usr/bin/zsh", "/usr/bin/mksh", "/usr/bin/fish", "/usr/bin/tcsh", "/usr/bin/csh"];
const BUSYBOX = "/usr/bin/busybox";

function installed(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

const missing = [...SHELLS, BUSYBOX].filter((path) => !installed(path));
if (missing.length > 0 && process.env.CI) throw new Error(`CI needs every login shell; missing ${missing.join(", ")}`);

function run(argv: readonly string[], stdin = ""): Promise<ChildOutcome> {
  return runChild(argv, { stdin, cwd: tmpdir(), env: { PATH: "/usr/bin:/bin", HOME: tmpdir() } });
}

/** Every installed login shell, running `line` the way an SSH server would. */
function everyShell(line: string): Array<Promise<{ shell: string; code: number | null; stdout: Buffer; stderr: string }>> {
  const shells = SHELLS.filter(installed).map((shell) => [shell, "-c", line]);
  if (installed(BUSYBOX)) shells.push([BUSYBOX, "ash", "-c", line]);
  return shells.map(async (argv) => ({ shell: argv.slice(0, -2).join(" "), ...(await run(argv)) }));
}

const AWKWARD = ["'", '"', "$", "`", "\\", "\\'", "\\\\", "!", "!!", "!$", "\n", "\r", "\t", "%", "%s", "%%", "#", "~", "^", "{", "}", "é", "日本", "🙂"];
const awkward = fc
  .array(fc.oneof(fc.constantFrom(...AWKWARD), fc.string({ unit: "binary", maxLength: 6 })), { maxLength: 10 })
  .map((parts) => parts.join(""))
  .filter((value) => !value.includes("\0") && Buffer.from(value, "utf8").toString("utf8") === value);

describe("loginShellCommand", () => {
  it("makes every login shell run the same POSIX script under /bin/sh", async () => {
    const script = [
      'f() { printf \'%s|\' "$0" "$#" "$1"; }',
      "if [ -n \"$HOME\" ]; then f 'it'\\''s'; fi",
      'x=1; { echo "x=$x"; }',
      "case a in a) echo 'case !ok' ;; esac",
      "printf '%s\\n' \"$(echo sub)\" `echo back`",
      String.raw`printf '%s|' 'tab	here' "100%" '\\ and \'; echo`,
      "exit 3",
    ].join("\n");
    for (const outcome of await Promise.all(everyShell(loginShellCommand(script)))) {
      expect({ shell: outcome.shell, code: outcome.code, stdout: outcome.stdout.toString(), stderr: outcome.stderr }).toEqual({
        shell: outcome.shell,
        code: 3,
        stdout: "sh|1|it's|x=1\ncase !ok\nsub\nback\ntab\there|100%|\\\\ and \\|\n",
        stderr: "",
      });
    }
  });

  it("passes arbitrary text through unchanged in every login shell", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(awkward, { minLength: 1, maxLength: 6 }), async (values) => {
        const script = values.map((value) => `printf '%s\\0' ${quote(value)}`).join("\n");
        const expected = values.map((value) => `${value}\0`).join("");
        for (const outcome of await Promise.all(everyShell(loginShellCommand(script)))) {
          expect({ shell: outcome.shell, stdout: outcome.stdout.toString("utf8"), stderr: outcome.stderr }).toEqual({
            shell: outcome.shell,
            stdout: expected,
            stderr: "",
          });
        }
      }),
      { numRuns: 15 },
    );
  });

  it("sends only characters every shell keeps literal inside single quotes", () => {
    const encoded = encodeForPrintf("a'b\\c!d%e\nf\u00e9");
    expect(encoded).toBe("a\\047b\\134c\\041d\\045e\\012f\\303\\251");
    expect(loginShellCommand("echo 'hi'")).toBe(`exec /bin/sh -c 'eval "set --; $(printf "$1")"' sh 'echo \\047hi\\047'`);
    expect(loginShellLength("a'b")).toBe(loginShellCommand("a'b").length);
  });

  it("sends a script of literal characters as it is, with no decoding step", () => {
    expect(loginShellCommand("echo hi")).toBe("exec /bin/sh -c 'echo hi' sh");
    expect(loginShellLength("df -h /srv")).toBe(loginShellCommand("df -h /srv").length);
    expect(loginShellCommand("echo hi\n")).toContain("printf");
  });

  it("runs a script of literal characters under /bin/sh with $0 sh and no positional parameters in every login shell", async () => {
    const script = 'echo "$0|$#|$HOME" | tr a-z A-Z; test -n "$HOME" && echo ok; exit 4';
    expect(loginShellCommand(script)).not.toContain("printf");
    for (const outcome of await Promise.all(everyShell(loginShellCommand(script)))) {
      expect({ shell: outcome.shell, code: outcome.code, stdout: outcome.stdout.toString(), stderr: outcome.stderr }).toEqual({
        shell: outcome.shell,
        code: 4,
        stdout: `SH|0|${tmpdir().toUpperCase()}\nok\n`,
        stderr: "",
      });
    }
  });

  it("hands every login shell's /bin/sh a script of literal characters byte for byte", async () => {
    const alphabet = [...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789 /._=+,:@"$;&|()<>*?[]{}~#^`-'];
    await fc.assert(
      fc.asyncProperty(fc.array(fc.constantFrom(...alphabet), { minLength: 1, maxLength: 40 }), async (characters) => {
        const script = characters.join("");
        const line = loginShellCommand(script);
        expect(line.startsWith("exec /bin/sh -c '")).toBe(true);
        // The same line with a program that prints the argument /bin/sh would have been given as its script.
        const echoing = line.replace(/^exec \/bin\/sh -c /, "exec /usr/bin/printf %s ");
        for (const outcome of await Promise.all(everyShell(echoing))) {
          expect({ shell: outcome.shell, stdout: outcome.stdout.toString(), stderr: outcome.stderr }).toEqual({
            shell: outcome.shell,
            stdout: `${script}sh`,
            stderr: "",
          });
        }
      }),
      { numRuns: 25 },
    );
  });

  it("refuses a NUL byte and a line longer than one argument may be", () => {
    expect(() => loginShellCommand("a\0b")).toThrow(ValidationError);
    expect(() => loginShellCommand("'".repeat(MAX_LOGIN_LINE_LENGTH / 4))).toThrow(/too long/);
  });
});
