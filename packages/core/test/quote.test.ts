import { spawn } from "node:child_process";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { quote, quoteArgs } from "../src/quote.js";

/** Run `script` with a real shell and return its raw stdout. */
function run(shell: string, script: string): Promise<{ code: number | null; stdout: Buffer; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(shell, ["-c", script], { stdio: ["ignore", "pipe", "pipe"] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on("data", (chunk: Buffer) => out.push(chunk));
    child.stderr.on("data", (chunk: Buffer) => err.push(chunk));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout: Buffer.concat(out), stderr: Buffer.concat(err).toString() }));
  });
}

/** Words as the shell saw them: printed NUL-terminated, split back. */
async function wordsSeenBy(shell: string, words: readonly string[]): Promise<string[]> {
  const { code, stdout, stderr } = await run(shell, `printf '%s\\0' ${quoteArgs(words)}`);
  expect(stderr).toBe("");
  expect(code).toBe(0);
  return stdout.toString("utf8").split("\0").slice(0, -1);
}

/** Pieces that shells treat specially, mixed with arbitrary Unicode. */
const AWKWARD = [
  "'", '"', "$", "`", "\\", "\n", "\r", "\t", " ", "*", "?", "[", "]", "{a,b}", "~", "!", "#", ";", "&", "|", "<", ">",
  "(", ")", "-", "--", "-n", "-e", "$(id)", "${HOME}", "$'x'", "%s", "\\n", "é", "日本", "🙂", "\u200b", "\u00a0", "'\\''",
];
/** Arbitrary strings without NUL (no shell word can hold one) and without lone surrogates (not encodable as UTF-8). */
const awkwardString = fc
  .array(fc.oneof(fc.constantFrom(...AWKWARD), fc.string({ unit: "binary", maxLength: 6 })), { maxLength: 8 })
  .map((parts) => parts.join(""))
  .filter((value) => !value.includes("\0") && Buffer.from(value, "utf8").toString("utf8") === value);

describe("quote", () => {
  it("leaves safe words alone and quotes everything else", () => {
    expect(quote("ok")).toBe("ok");
    expect(quote("/usr/bin/env")).toBe("/usr/bin/env");
    expect(quote("a=b,c:d@e%f+g-h.i")).toBe("a=b,c:d@e%f+g-h.i");
    expect(quote("")).toBe("''");
    expect(quote("it's")).toBe("'it'\\''s'");
    expect(quote("a b")).toBe("'a b'");
    expect(quote("$HOME")).toBe("'$HOME'");
  });

  it("refuses a NUL byte", () => {
    expect(() => quote("a\0b")).toThrow(TypeError);
  });

  it("joins quoted words with spaces", () => {
    expect(quoteArgs(["ls", "-l", "my dir"])).toBe("ls -l 'my dir'");
    expect(quoteArgs([])).toBe("");
  });

  for (const shell of ["/bin/sh", "/bin/bash"]) {
    it(`round-trips arbitrary words exactly through ${shell}`, async () => {
      await fc.assert(
        fc.asyncProperty(fc.array(awkwardString, { minLength: 1, maxLength: 5 }), async (words) => {
          expect(await wordsSeenBy(shell, words)).toEqual(words);
        }),
        { numRuns: 150 },
      );
    });
  }

  it("keeps each awkward piece one literal word in /bin/sh", async () => {
    expect(await wordsSeenBy("/bin/sh", AWKWARD)).toEqual(AWKWARD);
    expect(await wordsSeenBy("/bin/sh", ["", "", "*"])).toEqual(["", "", "*"]);
  });

  it("never lets a quoted word run a command", async () => {
    await fc.assert(
      fc.asyncProperty(awkwardString, async (word) => {
        // Were the word interpreted, `$(...)`/backticks would print "pwned" or change the exit code.
        const { code, stdout } = await run("/bin/sh", `set -- ${quote(`${word}$(echo pwned)\`echo pwned\``)}; printf '%s' "$#"`);
        expect(code).toBe(0);
        expect(stdout.toString()).toBe("1");
      }),
      { numRuns: 100 },
    );
  });
});
