/**
 * One big file up and down: tunnel per transport with and without sha256 verification, against raw ssh2 SFTP
 * tuned the way tunnel tunes it, ssh2-sftp-client with its defaults, and OpenSSH's `scp` and `sftp`.
 */
import { randomBytes } from "node:crypto";
import { createWriteStream } from "node:fs";
import { chown, copyFile, rm, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { finished } from "node:stream/promises";
import SftpClient from "ssh2-sftp-client";
import type { Client, SFTPWrapper } from "ssh2";
import { makeStack, rawConfig, rawConnect, rawEnd, type Stack } from "../clients.js";
import type { Context } from "../context.js";
import { runChecked, sshOptions, type ServerInfo } from "../environment.js";
import { MiB, timed } from "../stats.js";

const SECTION = "transfer: one file, MiB/s";
export const TUNED = { concurrency: 16, chunkSize: 255 * 1024 } as const;
const RAW = "raw ssh2 SFTP tuned (16 × 255 KiB)";

/** `size` bytes: a random MiB, salted with its index in each copy so no two MiB are alike. */
export async function writePayload(path: string, size: number): Promise<void> {
  const out = createWriteStream(path);
  const block = randomBytes(Math.min(size, MiB));
  for (let written = 0, index = 0; written < size; index++) {
    const chunk = Buffer.from(block.subarray(0, Math.min(block.length, size - written)));
    if (chunk.length >= 8) chunk.writeDoubleLE(index, 0);
    written += chunk.length;
    if (!out.write(chunk)) await new Promise<void>((resolve) => out.once("drain", () => resolve()));
  }
  out.end();
  await finished(out);
}

function sftpOf(client: Client): Promise<SFTPWrapper> {
  return new Promise((resolve, reject) => client.sftp((error, sftp) => (error ? reject(error) : resolve(sftp))));
}

function fast(sftp: SFTPWrapper, direction: "upload" | "download", from: string, to: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const done = (error: Error | null | undefined) => (error ? reject(error) : resolve());
    if (direction === "upload") sftp.fastPut(from, to, TUNED, done);
    else sftp.fastGet(from, to, TUNED, done);
  });
}

function scpArgs(server: ServerInfo): string[] {
  return ["-q", ...sshOptions(server), "-P", String(server.port)];
}

async function sftpBatch(server: ServerInfo, command: string): Promise<void> {
  const script = join(server.localDir, `sftp-batch-${randomBytes(4).toString("hex")}`);
  await writeFile(script, `${command}\n`);
  try {
    await runChecked("sftp", ["-q", ...sshOptions(server), "-b", script, "-P", String(server.port), `${server.user}@${server.host}`]);
  } finally {
    await rm(script, { force: true });
  }
}

export async function transfers(context: Context): Promise<void> {
  const { environment: server, options } = context;
  const size = (options.quick ? 16 : 256) * MiB;
  const rounds = options.quick ? 2 : 5;
  const label = `${size / MiB} MiB`;
  const target = { host: server.host, port: server.port, user: server.user };
  const payload = join(server.localDir, "payload");
  const remoteSource = join(server.remoteDir, "source");
  await writePayload(payload, size);
  await copyFile(payload, remoteSource);
  const owner = await stat(server.remoteDir);
  await chown(remoteSource, owner.uid, owner.gid);

  const stacks: Record<string, Stack> = { ssh2: makeStack("ssh2", server), openssh: makeStack("openssh", server) };
  const raw = await rawConnect(server, true);
  const sftpClient = new SftpClient();
  await sftpClient.connect(rawConfig(server));
  try {
    for (const stack of Object.values(stacks)) await stack.pool.warm(target, 1);
    type Tool = readonly [string, (direction: "upload" | "download", from: string, to: string) => Promise<void>];
    const tools: Tool[] = [];
    for (const name of ["ssh2", "openssh"]) {
      const stack = stacks[name] as Stack;
      for (const verify of [false, true] as const) {
        tools.push([
          `tunnel executor (${name}${verify ? ", verify sha256" : ""})`,
          async (direction, source, destination) => {
            await stack.executor.transferFile({ ...target, direction, source, destination, verify: verify ? "sha256" : false });
          },
        ]);
      }
    }
    tools.push([
      RAW,
      async (direction, from, to) => {
        const sftp = await sftpOf(raw);
        try {
          await fast(sftp, direction, from, to);
        } finally {
          sftp.end();
        }
      },
    ]);
    tools.push([
      "ssh2-sftp-client (defaults)",
      async (direction, from, to) => {
        if (direction === "upload") await sftpClient.fastPut(from, to);
        else await sftpClient.fastGet(from, to);
      },
    ]);
    tools.push([
      "scp (new connection)",
      async (direction, from, to) => {
        const remote = (path: string) => `${server.user}@${server.host}:${path}`;
        await runChecked("scp", [...scpArgs(server), direction === "upload" ? from : remote(from), direction === "upload" ? remote(to) : to]);
      },
    ]);
    tools.push(["sftp (new connection)", async (direction, from, to) => sftpBatch(server, direction === "upload" ? `put ${from} ${to}` : `get ${from} ${to}`)]);

    const samples = new Map<string, number[]>();
    for (let round = 0; round < rounds; round++) {
      context.log(`  round ${round + 1}/${rounds}`);
      for (const direction of ["upload", "download"] as const) {
        for (const [tool, move] of tools) {
          const destination = direction === "upload" ? join(server.remoteDir, "upload") : join(server.localDir, "download");
          const from = direction === "upload" ? payload : remoteSource;
          const ms = await timed(() => move(direction, from, destination));
          const moved = (await stat(destination)).size;
          if (moved !== size) throw new Error(`${tool} ${direction}: ${moved} bytes instead of ${size}`);
          await rm(destination, { force: true });
          const key = `${direction}\u0000${tool}`;
          samples.set(key, [...(samples.get(key) ?? []), size / MiB / (ms / 1000)]);
        }
      }
    }
    for (const [key, values] of samples) {
      const [direction, tool] = key.split("\u0000") as [string, string];
      const verifyOf = /^tunnel executor \((\w+), verify sha256\)$/.exec(tool);
      const against =
        tool === RAW ? ["scp (new connection)"] : verifyOf ? [`tunnel executor (${verifyOf[1]})`, RAW, "scp (new connection)"] : [RAW, "scp (new connection)"];
      context.record({ section: SECTION, case: `${direction} ${label}`, tool, unit: "MiB/s", samples: values, against });
    }
  } finally {
    await sftpClient.end().catch(() => {});
    await rawEnd(raw);
    await Promise.all(Object.values(stacks).map((stack) => stack.close()));
    await rm(payload, { force: true });
    await rm(remoteSource, { force: true });
  }
}
