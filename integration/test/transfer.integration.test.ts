/**
 * `executor.transferFile` over both transports against a real OpenSSH sshd: byte-identical round trips, trees
 * (nested folders, an empty folder, modes, symlinks), modes, owner/group through sudo, the overwrite policies and
 * progress. The server is this machine, so the "remote" side is checked with plain `fs` calls.
 */
import { chmod, chown, lstat, mkdir, mkdtemp, readFile, readdir, readlink, rm, stat, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TransferError } from "@tunnel-sh/core";
import type { Progress } from "@tunnel-sh/core";
import { startSshd } from "@tunnel-sh/testing";
import type { Sshd } from "@tunnel-sh/testing";
import { TRANSFER_TRANSPORTS, accountIds, sha256File, tempLeftovers, transferStack, userFolder, writeRandomFile } from "./support/transfer-stack.js";
import type { TransferStack } from "./support/transfer-stack.js";

const MiB = 1024 * 1024;

/** Every entry under `root` (not `root` itself): kind, permission bits, and the content hash or link text. */
async function describeTree(root: string): Promise<Record<string, string>> {
  const result: Record<string, string> = {};
  for (const name of (await readdir(root, { recursive: true })).sort()) {
    const path = join(root, name);
    const info = await lstat(path);
    const mode = (info.mode & 0o7777).toString(8);
    if (info.isSymbolicLink()) result[name] = `link -> ${await readlink(path)}`;
    else if (info.isDirectory()) result[name] = `dir ${mode}`;
    else result[name] = `file ${mode} ${info.size} ${await sha256File(path)}`;
  }
  return result;
}

/** 200 files over nested folders with assorted modes and sizes, an empty folder and two symlinks. */
async function buildTree(root: string): Promise<void> {
  const modes = [0o644, 0o600, 0o755, 0o640, 0o700];
  await mkdir(join(root, "empty", "deeper-empty"), { recursive: true });
  for (let index = 0; index < 200; index++) {
    const folder = join(root, `a${index % 5}`, `b${index % 3}`, index % 2 === 0 ? "c" : "");
    await mkdir(folder, { recursive: true });
    const path = join(folder, `file-${index}.bin`);
    await writeRandomFile(path, index === 7 ? 0 : (index * 7919) % 40_000);
    await chmod(path, modes[index % modes.length] ?? 0o644);
  }
  await chmod(join(root, "a1"), 0o750);
  await chmod(join(root, "empty"), 0o700);
  // A link inside the tree and one pointing out of it: both are recreated as links, never followed.
  await symlink("b0/file-5.bin", join(root, "a0", "inside-link"));
  await symlink("/etc/hostname", join(root, "outside-link"));
}

describe.each(TRANSFER_TRANSPORTS)("transferFile over %s on a real sshd", (name) => {
  let sshd: Sshd;
  let stack: TransferStack;
  let sudoStack: TransferStack;
  let local: string;
  let remote: string;
  let user: string;

  beforeAll(async () => {
    sshd = await startSshd();
    user = sshd.users.plain.name;
    stack = transferStack(name, sshd);
    sudoStack = transferStack(name, sshd);
    local = await mkdtemp(join(tmpdir(), "tunnel-transfer-local-"));
    remote = await userFolder(user);
  });

  afterAll(async () => {
    await stack?.close();
    await sudoStack?.close();
    await sshd?.stop();
    if (local) await rm(local, { recursive: true, force: true });
    if (remote) await rm(remote, { recursive: true, force: true });
  });

  const target = () => ({ host: sshd.host, port: sshd.port, user });
  /** Files the test writes on the "remote" side belong to the login user, as if it had made them. */
  const giveToUser = async (path: string) => {
    const { uid, gid } = accountIds(user);
    await chown(path, uid, gid);
  };

  it.each([
    { label: "0 B", size: 0 },
    { label: "1 B", size: 1 },
    { label: "64 MiB", size: 64 * MiB },
  ])("round-trips a $label random file byte-identically", async ({ size }) => {
    const source = join(local, `round-${size}.bin`);
    const hash = await writeRandomFile(source, size);
    const remotePath = join(remote, `round-${size}.bin`);
    const up = await stack.executor.transferFile({ ...target(), direction: "upload", source, destination: remotePath });
    expect(up).toMatchObject({ bytes: size, files: 1, skipped: 0 });
    expect(await sha256File(remotePath)).toBe(hash);
    const back = join(local, `round-${size}.back`);
    const down = await stack.executor.transferFile({ ...target(), direction: "download", source: remotePath, destination: back });
    expect(down).toMatchObject({ bytes: size, files: 1, skipped: 0 });
    expect((await stat(back)).size).toBe(size);
    expect(await sha256File(back)).toBe(hash);
    expect(await tempLeftovers(remote)).toEqual([]);
    expect(await tempLeftovers(local)).toEqual([]);
  });

  it("round-trips a 200-file nested tree with its structure, modes, an empty folder and symlinks (recreated, not followed)", async () => {
    const source = join(local, "tree");
    await buildTree(source);
    const expected = await describeTree(source);
    const remoteTree = join(remote, "tree");
    const up = await stack.executor.transferFile({ ...target(), direction: "upload", source, destination: remoteTree, recursive: true });
    expect(up).toMatchObject({ files: 200, skipped: 0 });
    expect(await describeTree(remoteTree)).toEqual(expected);
    const back = join(local, "tree-back");
    const down = await stack.executor.transferFile({ ...target(), direction: "download", source: remoteTree, destination: back, recursive: true });
    expect(down).toMatchObject({ files: 200, skipped: 0, bytes: up.bytes });
    expect(await describeTree(back)).toEqual(expected);
    // The link out of the tree stays a link with the same text: the file it names was not copied in.
    expect(expected["outside-link"]).toBe("link -> /etc/hostname");
    expect((await lstat(join(back, "outside-link"))).isSymbolicLink()).toBe(true);
    expect(expected["empty/deeper-empty"]).toMatch(/^dir /);
    expect(await tempLeftovers(remoteTree)).toEqual([]);
  }, 120_000);

  it("applies mode 0750 on upload and 0640 on download", async () => {
    const source = join(local, "mode.sh");
    await writeFile(source, "#!/bin/sh\necho hi\n", { mode: 0o600 });
    const remotePath = join(remote, "mode.sh");
    await stack.executor.transferFile({ ...target(), direction: "upload", source, destination: remotePath, mode: "0750" });
    expect((await stat(remotePath)).mode & 0o7777).toBe(0o750);
    const back = join(local, "mode.back");
    await stack.executor.transferFile({ ...target(), direction: "download", source: remotePath, destination: back, mode: "0640" });
    expect((await stat(back)).mode & 0o7777).toBe(0o640);
  });

  it("changes owner and group through sudo, and fails without it", async () => {
    const sudoUser = sshd.users.sudo.name;
    const other = sshd.users.other.name;
    const folder = await userFolder(sudoUser);
    try {
      const source = join(local, "owned.txt");
      await writeFile(source, "owned\n");
      const base = { host: sshd.host, port: sshd.port, user: sudoUser, direction: "upload" as const, source };
      const owned = join(folder, "owned.txt");
      await sudoStack.executor.transferFile({ ...base, destination: owned, owner: other, group: other, sudo: true });
      const info = await stat(owned);
      expect({ uid: info.uid, gid: info.gid }).toEqual(accountIds(other));
      expect(await readFile(owned, "utf8")).toBe("owned\n");

      const refused = sudoStack.executor.transferFile({ ...base, destination: join(folder, "refused.txt"), owner: other });
      await expect(refused).rejects.toBeInstanceOf(TransferError);
      await expect(refused).rejects.toThrow(/owner/);
      expect(await tempLeftovers(folder)).toEqual([]);
    } finally {
      await rm(folder, { recursive: true, force: true });
    }
  });

  describe.each(["upload", "download"] as const)("overwrite policies (%s)", (direction) => {
    const paths = (label: string) => {
      const here = join(local, `${direction}-${label}`);
      const there = join(remote, `${direction}-${label}`);
      return direction === "upload" ? { source: here, destination: there, existing: there } : { source: there, destination: here, existing: here };
    };

    const prepare = async (label: string) => {
      const { source, destination, existing } = paths(label);
      await writeFile(source, "new content\n");
      await writeFile(existing, "old\n");
      if (direction === "download") await giveToUser(source);
      return { ...target(), direction, source, destination };
    };

    it("replace (the default) swaps the content in atomically", async () => {
      const transfer = await prepare("replace");
      expect(await stack.executor.transferFile(transfer)).toMatchObject({ files: 1, skipped: 0 });
      expect(await readFile(paths("replace").existing, "utf8")).toBe("new content\n");
    });

    it("skip leaves the existing file alone and counts it", async () => {
      const transfer = await prepare("skip");
      expect(await stack.executor.transferFile({ ...transfer, overwrite: "skip" })).toMatchObject({ files: 0, skipped: 1, bytes: 0 });
      expect(await readFile(paths("skip").existing, "utf8")).toBe("old\n");
    });

    it("error fails with a TransferError before any byte moves", async () => {
      const transfer = await prepare("error");
      const outcome = stack.executor.transferFile({ ...transfer, overwrite: "error" });
      await expect(outcome).rejects.toBeInstanceOf(TransferError);
      await expect(outcome).rejects.toMatchObject({ code: "TRANSFER", retryable: false });
      expect(await readFile(paths("error").existing, "utf8")).toBe("old\n");
      expect(await tempLeftovers(direction === "upload" ? remote : local)).toEqual([]);
    });
  });

  it.each(["upload", "download"] as const)("reports %s progress that never decreases and ends exactly at the size", async (direction) => {
    const size = 48 * MiB + 12_345;
    const here = join(local, `progress-${direction}.bin`);
    const there = join(remote, `progress-${direction}.bin`);
    if (direction === "upload") await writeRandomFile(here, size);
    else {
      await writeRandomFile(there, size);
      await giveToUser(there);
    }
    const events: Progress[] = [];
    await stack.executor.transferFile({
      ...target(),
      direction,
      source: direction === "upload" ? here : there,
      destination: direction === "upload" ? there : join(local, `progress-${direction}.back`),
      verify: "sha256",
      onProgress: (progress) => events.push(progress),
    });
    // How many events arrive depends on how fast the bytes move (the openssh transport polls the file's offset on
    // an interval): at least the final one, and never one that goes back.
    expect(events.length).toBeGreaterThanOrEqual(1);
    for (const [index, event] of events.entries()) {
      expect(event.total).toBe(size);
      expect(event.bytes).toBeLessThanOrEqual(size);
      if (index > 0) expect(event.bytes).toBeGreaterThan(events[index - 1]?.bytes ?? 0);
    }
    expect(events.at(-1)?.bytes).toBe(size);
  });
});
