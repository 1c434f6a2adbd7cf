/**
 * Every file name the file system accepts (up to 255 bytes, Linux's NAME_MAX) uploads and downloads atomically, as a
 * single file and inside a tree, over both transports; no temporary file is left behind.
 */
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startSshd } from "@tunnel-sh/testing";
import type { Sshd } from "@tunnel-sh/testing";
import { makeStack, TRANSPORTS } from "./support/transports.js";
import type { Stack } from "./support/transports.js";

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
  let sshd: Sshd;
  let stack: Stack;
  let local: string;
  let remote: string;
  const target = () => ({ host: sshd.host, port: sshd.port, user: sshd.users.plain.name });

  beforeAll(async () => {
    sshd = await startSshd();
    stack = makeStack(transportName, sshd);
    local = await mkdtemp(join(tmpdir(), "tunnel-long-local-"));
    remote = `/tmp/tunnel-long-remote-${transportName}-${process.pid}`;
    await stack.executor.runCommand({ ...target(), cmd: `rm -rf ${remote} && mkdir -p ${remote}/tree` });
  });
  afterAll(async () => {
    await stack?.executor.runCommand({ ...target(), cmd: `rm -rf ${remote}` }).catch(() => undefined);
    await stack?.close();
    await sshd?.stop();
    await rm(local, { recursive: true, force: true });
  });

  it("names of 230 to 255 bytes go up and come back, verified, with no temp file left", async () => {
    for (const [index, name] of NAMES.entries()) {
      expect(Buffer.byteLength(name)).toBeGreaterThanOrEqual(230);
      expect(Buffer.byteLength(name)).toBeLessThanOrEqual(255);
      const source = join(local, name);
      await writeFile(source, `payload ${index}\n`);
      const up = await stack.executor.transferFile({ ...target(), direction: "upload", source, destination: `${remote}/${name}`, verify: "sha256" });
      expect(up).toMatchObject({ files: 1, verified: true });
      const back = join(local, "back");
      await mkdir(back, { recursive: true });
      const down = await stack.executor.transferFile({
        ...target(),
        direction: "download",
        source: `${remote}/${name}`,
        destination: join(back, name),
        verify: "sha256",
      });
      expect(down).toMatchObject({ files: 1, verified: true });
      expect(await readFile(join(back, name), "utf8")).toBe(`payload ${index}\n`);
    }
    expect((await readdir(remote)).filter((name) => name !== "tree").sort()).toEqual([...NAMES].sort());
    expect(await leftovers(remote)).toEqual([]);
    expect(await leftovers(local)).toEqual([]);
  });

  it("a tree holding such names goes up and comes back", async () => {
    const tree = join(local, "tree");
    await mkdir(join(tree, "sub"), { recursive: true });
    for (const name of NAMES) await writeFile(join(tree, "sub", name), name);
    const up = await stack.executor.transferFile({ ...target(), direction: "upload", source: tree, destination: `${remote}/tree`, recursive: true });
    expect(up.files).toBe(NAMES.length);
    const back = join(local, "tree-back");
    const down = await stack.executor.transferFile({ ...target(), direction: "download", source: `${remote}/tree`, destination: back, recursive: true });
    expect(down.files).toBe(NAMES.length);
    for (const name of NAMES) expect(await readFile(join(back, "sub", name), "utf8")).toBe(name);
    expect(await leftovers(remote)).toEqual([]);
    expect(await leftovers(local)).toEqual([]);
  });
});
