import { spawnSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { terminalResetScript } from "../../src/remote/terminal.js";

/** Runs `script` then `stty size` on a fresh pty (util-linux `script`), and returns what `stty size` printed. */
function sizeAfter(script: string): string {
  const result = spawnSync("script", ["-qec", `${script}; stty size`, "/dev/null"], { encoding: "utf8" });
  return result.stdout.trim();
}

describe("terminalResetScript", () => {
  it("sets the window size it is given on a real pty", () => {
    expect(sizeAfter(terminalResetScript({ rows: 41, cols: 121 }))).toBe("41 121");
  });

  it("builds the line from the size, whole numbers only", () => {
    expect(terminalResetScript()).toBe("stty sane 2>/dev/null");
    expect(terminalResetScript({ cols: 80.7 })).toBe("stty sane cols 80 2>/dev/null");
    expect(() => terminalResetScript({ rows: 0 })).toThrow(TypeError);
    expect(() => terminalResetScript({ rows: Number.NaN })).toThrow(TypeError);
  });

  it("is silent without a terminal, and what follows it runs", () => {
    const result = spawnSync("/bin/sh", ["-c", `${terminalResetScript({ rows: 10 })}; echo next`], { stdio: ["pipe", "pipe", "pipe"], encoding: "utf8" });
    expect(result).toMatchObject({ status: 0, stdout: "next\n", stderr: "" });
  });
});
