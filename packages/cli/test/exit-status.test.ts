/**
 * One list of exit statuses: `EXIT_STATUSES` in code, printed by `tunnel --help`, and the README's "Exit status"
 * table must say the same, status by status.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { EXIT_STATUSES, ExitCode, runCli } from "../src/index.js";
import { Capture } from "./support.js";

/** The rows of the README's "## Exit status" table, `\|` unescaped. */
function readmeStatuses(): Array<{ status: number; meaning: string }> {
  const readme = readFileSync(join(import.meta.dirname, "..", "README.md"), "utf8");
  const section = /^## Exit status\n([\s\S]*?)(?=^## )/m.exec(readme)?.[1];
  if (section === undefined) throw new Error("the README has no '## Exit status' section");
  return section
    .split("\n")
    .filter((line) => /^\| \d+ \|/.test(line))
    .map((line) => {
      const match = /^\| (\d+) \| (.*) \|$/.exec(line);
      if (!match) throw new Error(`not a table row: ${line}`);
      return { status: Number(match[1]), meaning: (match[2] ?? "").replace(/\\\|/g, "|") };
    });
}

describe("exit statuses", () => {
  it("the README's table lists exactly EXIT_STATUSES, in order", () => {
    expect(readmeStatuses()).toEqual(EXIT_STATUSES.map(({ status, meaning }) => ({ status, meaning })));
  });

  it("EXIT_STATUSES names every ExitCode once, and nothing else", () => {
    expect(EXIT_STATUSES.map((entry) => entry.status).sort((a, b) => a - b)).toEqual(Object.values(ExitCode).sort((a, b) => a - b));
  });

  it("tunnel --help prints every status with its meaning", async () => {
    const stdout = new Capture();
    expect(await runCli(["--help"], { stdout, stderr: new Capture(), env: {} })).toBe(ExitCode.OK);
    const escape = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
    for (const { status, meaning } of EXIT_STATUSES) {
      expect(stdout.text).toMatch(new RegExp(`^ +${status} +${escape(meaning)}$`, "m"));
    }
    for (const status of [4, 141, 143]) expect(stdout.text).toMatch(new RegExp(`^ +${status} `, "m"));
  });
});
