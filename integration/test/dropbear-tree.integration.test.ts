/**
 * dropbear takes at most 9 000 bytes in one exec request (its `MAX_CMD_LEN`; a longer one closes the connection).
 * A tree transfer batches its folders, hashes and renames into long command lines; over a connection that knows the
 * server's limit (`Connection.maxCommandBytes`), every batch fits, so a tree whose paths run to tens of kilobytes moves
 * up and back down, verified, against a real dropbear — over both transports (the openssh transport runs one session
 * at a time on a dropbear connection, whose sessions started together through a ControlMaster can end unreported).
 */
import { createHash } from "node:crypto";
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startDropbear } from "@tunnel-sh/testing";
import type { Dropbear } from "@tunnel-sh/testing";
import { makeStack } from "./support/transports.js";
import type { Stack } from "./support/transports.js";

const FILES = 240;

async function digestTree(root: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const walk = async (dir: string, prefix: string): Promise<void> => {
    for (const entry of await readdir(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) await walk(path, `${prefix}${entry.name}/`);
      else
        out[`${prefix}${entry.name}`] = createHash("sha256")
          .update(await readFile(path))
          .digest("hex");
    }
  };
  await walk(root, "");
  return out;
}

describe.each(["ssh2", "openssh"] as const)("a tree transfer whose command lines would pass dropbear's limit (%s)", (transport) => {
  let dropbear: Dropbear;
  let stack: Stack;
  let local: string;
  let remote: string;

  beforeAll(async () => {
    dropbear = await startDropbear();
    stack = makeStack(transport, dropbear);
    local = await mkdtemp(join(tmpdir(), "tunnel-dropbear-tree-"));
    // Folders and names long enough that every batch of them passes 9 000 bytes many times over.
    for (let index = 0; index < FILES; index++) {
      const folder = join(local, "tree", `folder-with-a-rather-long-name-${String(index % 12).padStart(2, "0")}`);
      await mkdir(folder, { recursive: true });
      await writeFile(join(folder, `file-${String(index).padStart(4, "0")}-with-a-name-that-goes-on-for-a-while.txt`), `content ${index}\n`);
    }
    remote = `/tmp/tunnel-dropbear-tree-${transport}-${process.pid}`;
  }, 60_000);
  afterAll(async () => {
    await stack?.executor.runCommand({ host: dropbear.host, port: dropbear.port, user: dropbear.users.plain.name, cmd: `rm -rf -- ${remote}` }).catch(() => {});
    await stack?.close();
    await dropbear?.stop();
    if (local) await rm(local, { recursive: true, force: true });
  });

  it("uploads and downloads it, verified, in batches that each fit", async () => {
    const target = { host: dropbear.host, port: dropbear.port, user: dropbear.users.plain.name };
    const up = await stack.executor.transferFile({
      ...target,
      direction: "upload",
      source: join(local, "tree"),
      destination: remote,
      recursive: true,
      verify: "sha256",
    });
    expect(up).toMatchObject({ files: FILES, verified: true });
    const down = await stack.executor.transferFile({
      ...target,
      direction: "download",
      source: remote,
      destination: join(local, "back"),
      recursive: true,
      verify: "sha256",
    });
    expect(down).toMatchObject({ files: FILES, verified: true });
    expect(await digestTree(join(local, "back"))).toEqual(await digestTree(join(local, "tree")));
  }, 120_000);
});
