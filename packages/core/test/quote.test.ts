import { spawn } from "node:child_process";
import { tmpdir } from "node:os";
import fc from "fast-check";
import { AWKWARD_SHELL_WORDS } from "@tunnel-sh/testing";
import { describe, expect, it } from "vitest";
import { quote, quoteArgs } from "../src/quote.js";

/** Run `script` with a real shell and return its raw stdout. */
function run(shell: string, script: string): Promise<{ code: number | null; stdout: Buffer; stderr: string }> {
  return new Promise((resolve, reject) => {
    // In the temp folder, so even a quoting bug's stray redirection cannot litter the package.
    const child = spawn(shell, ["-c", script], { stdio: ["ignore", "pipe", "pipe"], cwd: tmpdir() });
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
  return (await listsSeenBy(shell, [words]))[0] as string[];
}

/**
 * Several word lists through one shell process (a process per list would make the suite slow): each list is
 * set as "$@" and printed as its count followed by its words, all NUL-terminated.
 */
async function listsSeenBy(shell: string, lists: ReadonlyArray<readonly string[]>): Promise<string[][]> {
  const script = lists.map((words) => `set -- ${quoteArgs(words)}; printf '%s\\0' "$#" "$@"`).join("\n");
  const { code, stdout, stderr } = await run(shell, script);
  expect(stderr).toBe("");
  expect(code).toBe(0);
  const fields = stdout.toString("utf8").split("\0").slice(0, -1);
  const seen: string[][] = [];
  while (fields.length > 0) {
    const count = Number(fields.shift());
    seen.push(fields.splice(0, count));
  }
  return seen;
}

/** Arbitrary strings without NUL (no shell word can hold one) and without lone surrogates (not encodable as UTF-8). */
const awkwardString = fc
  .array(fc.oneof(fc.constantFrom(...AWKWARD_SHELL_WORDS), fc.string({ unit: "binary", maxLength: 6 })), { maxLength: 8 })
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

  for (const [shell, numRuns] of [
    ["/bin/sh", 30],
    ["/bin/bash", 20],
  ] as const) {
    it(`round-trips arbitrary words exactly through ${shell}`, async () => {
      const lists = fc.array(fc.array(awkwardString, { minLength: 1, maxLength: 5 }), { minLength: 1, maxLength: 8 });
      await fc.assert(
        fc.asyncProperty(lists, async (batch) => {
          expect(await listsSeenBy(shell, batch)).toEqual(batch);
        }),
        { numRuns },
      );
    });
  }

  it("keeps each awkward piece one literal word in /bin/sh", async () => {
    expect(await wordsSeenBy("/bin/sh", AWKWARD_SHELL_WORDS)).toEqual(AWKWARD_SHELL_WORDS);
    expect(await wordsSeenBy("/bin/sh", ["", "", "*"])).toEqual(["", "", "*"]);
  });

  it("never lets a quoted word run a command", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(awkwardString, { minLength: 1, maxLength: 8 }), async (words) => {
        // Were a word interpreted, `$(...)`/backticks would run `echo pwned` and change what the shell saw.
        const payloads = words.map((word) => [`${word}$(echo pwned)\`echo pwned\`;echo pwned`]);
        const seen = await listsSeenBy("/bin/sh", payloads);
        expect(seen).toEqual(payloads);
        expect(seen.flat().join("")).not.toMatch(/^pwned$/m);
      }),
      { numRuns: 20 },
    );
  });
});
