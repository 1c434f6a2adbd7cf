import { describe, expect, it } from "vitest";
import { BarProgress } from "../src/bar-progress.js";
import { NoProgress } from "../src/progress.js";
import { Capture, plain } from "./support.js";

describe("BarProgress", () => {
  it("draws a bar per host with percentage and sizes, and prints logged lines above the bars", () => {
    const terminal = new Capture(true);
    const progress = new BarProgress(terminal, ["web-1", "db"]);
    const web = progress.start("web-1");
    const db = progress.start("db");
    web({ bytes: 512 * 1024, total: 1024 * 1024, rate: 1024 * 1024 });
    db({ bytes: 0, total: 2048, rate: 0 });
    progress.finish("web-1", 1024 * 1024);
    progress.log("web-1 | uploaded 1.0 MiB");
    progress.finish("db", 2048);
    progress.stop();
    const text = plain(terminal.text);
    expect(text).toMatch(/web-1 \|█{30}\| 100% \| 1\.0 MiB\/1\.0 MiB/);
    expect(text).toMatch(/db    \|█{30}\| 100% \| 2\.0 KiB\/2\.0 KiB/);
    expect(text).toContain("web-1 | uploaded 1.0 MiB\n");
  });

  it("ignores updates after stop", () => {
    const terminal = new Capture(true);
    const progress = new BarProgress(terminal, ["a"]);
    const update = progress.start("a");
    progress.stop();
    const before = terminal.text;
    update({ bytes: 10, total: 10, rate: 1 });
    progress.log("late");
    expect(terminal.text).toBe(before);
  });
});

describe("NoProgress", () => {
  it("draws nothing and prints logged lines as they are", () => {
    const out = new Capture();
    const progress = new NoProgress(out);
    progress.start("a")({ bytes: 1, total: 2, rate: 1 });
    progress.log("a | done");
    expect(out.text).toBe("a | done\n");
  });
});
