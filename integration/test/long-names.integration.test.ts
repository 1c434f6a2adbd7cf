/**
 * Every file name the file system accepts (up to 255 bytes, Linux's NAME_MAX) uploads and downloads atomically, as a
 * single file and inside a tree, over both transports; no temporary file is left behind.
 */
import { mkdir, readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { scratchServer } from "./support/scratch-server.js";
import { TRANSPORTS } from "./support/transports.js";

const NAMES = [
  "a".repeat(255),
  `${"b".repeat(229)}.tar.gz`.padEnd(230, "c"),
  // 127 two-byte characters and one more byte: 255 bytes.
  `${"é".repeat(127)}x`,
  "短".repeat(85),
];

async function leftovers(folder: string): Promise<string[]> {
  const found: string[] = [];
  for (const entry of await readdir(folder, { withFileTypes: true, recursive: true })) {
    if (entry.name.includes(".tunnel-") || entry.name.endsWith(".part")) found.push(entry.name);
  }
  return found;
}

describe.each(TRANSPORTS)("long file names over %s", (transportName) => {
  const server = scratchServer(transportName, "tunnel-long", "tree");

  it("names of 230 to 255 bytes go up and come back, verified, with no temp file left", async () => {
    for (const [index, name] of NAMES.entries()) {
      expect(Buffer.byteLength(name)).toBeGreaterThanOrEqual(230);
      expect(Buffer.byteLength(name)).toBeLessThanOrEqual(255);
      const source = join(server.local, name);
      await writeFile(source, `payload ${index}\n`);
      const up = await server.stack.executor.transferFile({
        ...server.target(),
        direction: "upload",
        source,
        destination: `${server.remote}/${name}`,
        verify: "sha256",
      });
      expect(up).toMatchObject({ files: 1, verified: true });
      const back = join(server.local, "back");
      await mkdir(back, { recursive: true });
      const down = await server.stack.executor.transferFile({
        ...server.target(),
        direction: "download",
        source: `${server.remote}/${name}`,
        destination: join(back, name),
        verify: "sha256",
      });
      expect(down).toMatchObject({ files: 1, verified: true });
      expect(await readFile(join(back, name), "utf8")).toBe(`payload ${index}\n`);
    }
    expect((await readdir(server.remote)).filter((name) => name !== "tree").sort()).toEqual([...NAMES].sort());
    expect(await leftovers(server.remote)).toEqual([]);
    expect(await leftovers(server.local)).toEqual([]);
  });

  it("a tree holding such names goes up and comes back", async () => {
    const tree = join(server.local, "tree");
    await mkdir(join(tree, "sub"), { recursive: true });
    for (const name of NAMES) await writeFile(join(tree, "sub", name), name);
    const up = await server.stack.executor.transferFile({
      ...server.target(),
      direction: "upload",
      source: tree,
      destination: `${server.remote}/tree`,
      recursive: true,
    });
    expect(up.files).toBe(NAMES.length);
    const back = join(server.local, "tree-back");
    const down = await server.stack.executor.transferFile({
      ...server.target(),
      direction: "download",
      source: `${server.remote}/tree`,
      destination: back,
      recursive: true,
    });
    expect(down.files).toBe(NAMES.length);
    for (const name of NAMES) expect(await readFile(join(back, "sub", name), "utf8")).toBe(name);
    expect(await leftovers(server.remote)).toEqual([]);
    expect(await leftovers(server.local)).toEqual([]);
  });
});
