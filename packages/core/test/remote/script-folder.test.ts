import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { removeScriptFolderScript, writeScriptFolderScript } from "../../src/remote/script-folder.js";

const scratch = mkdtempSync(join(tmpdir(), "tunnel-script-folder-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

const sh = (script: string, input = "") => spawnSync("/bin/sh", ["-c", script], { input, env: { PATH: "/usr/bin:/bin", TMPDIR: scratch } });

describe("script folder snippets", () => {
  it("writes stdin into a new 0700 folder under $TMPDIR and prints its path; removes it again", () => {
    const body = "#!/bin/sh\necho 'it''s' \"$1\"\n";
    const written = sh(writeScriptFolderScript("tunnel-script.abc123"), body);
    expect(written.status).toBe(0);
    const folder = written.stdout.toString().trim();
    expect(folder).toBe(join(scratch, "tunnel-script.abc123"));
    expect(statSync(folder).mode & 0o777).toBe(0o700);
    expect(readFileSync(join(folder, "script"), "utf8")).toBe(body);
    expect(statSync(join(folder, "script")).mode & 0o077).toBe(0);
    expect(sh(removeScriptFolderScript("tunnel-script.abc123")).status).toBe(0);
    expect(() => statSync(folder)).toThrow();
  });

  it("fails rather than reuse a folder that already exists", () => {
    expect(sh(writeScriptFolderScript("tunnel-script.again"), "x").status).toBe(0);
    const again = sh(writeScriptFolderScript("tunnel-script.again"), "y");
    expect(again.status).not.toBe(0);
    expect(again.stdout.toString()).toBe("");
    expect(readFileSync(join(scratch, "tunnel-script.again", "script"), "utf8")).toBe("x");
  });

  it("refuses a name that could leave the temp folder", () => {
    for (const name of ["../x", "a/b", ".hidden", "a b", ""]) expect(() => writeScriptFolderScript(name)).toThrow(TypeError);
  });
});
