import { afterAll, beforeAll, expect, it } from "vitest";
import { startSshd, type Sshd } from "@tunnel/testing";
import { Ssh2Transport } from "../src/index.js";
import { writeFileSync, readFileSync } from "node:fs";
import { randomBytes } from "node:crypto";
import SftpClient from "ssh2-sftp-client";

let sshd: Sshd;
beforeAll(async () => { sshd = await startSshd(); });
afterAll(async () => { await sshd?.stop(); });
const MiB = 1024 * 1024;
const SIZE = 128 * MiB;

it("measure", async () => {
  const out: Record<string, number[]> = {};
  const add = (k: string, v: number) => (out[k] ??= []).push(+v.toFixed(2));
  const src = "/tmp/ssh2-bench-src"; writeFileSync(src, randomBytes(SIZE));
  const t = new Ssh2Transport({ knownHosts: sshd.knownHostsPath, privateKey: sshd.clientKeyPath, sshConfig: false, agent: false });
  const c: any = await t.connect({ host: sshd.host, port: sshd.port, user: sshd.users.plain.name });
  const remote = `/home/${sshd.users.plain.name}/bench`;
  const rate = (ms: number) => SIZE / MiB / (ms / 1000);
  const rss0 = process.memoryUsage().rss; let rssMax = rss0;
  const timer = setInterval(() => { rssMax = Math.max(rssMax, process.memoryUsage().rss); }, 20);
  for (let round = 0; round < 3; round++) {
    let t0 = performance.now(); await c.upload({ localPath: src, remotePath: remote }); add(`tunnel-up`, rate(performance.now() - t0));
    t0 = performance.now(); await c.download({ remotePath: remote, localPath: "/tmp/ssh2-bench-dst" }); add(`tunnel-down`, rate(performance.now() - t0));
  }
  clearInterval(timer);
  add("tunnel-rss-growth-MiB", (rssMax - rss0) / MiB);
  const sftp: any = await new Promise((res, rej) => c.client.sftp((e: any, s: any) => (e ? rej(e) : res(s))));
  for (let round = 0; round < 3; round++) {
    const opts = { concurrency: 16, chunkSize: 255 * 1024 };
    let t0 = performance.now(); await new Promise<void>((res, rej) => sftp.fastPut(src, remote, opts, (e: any) => (e ? rej(e) : res()))); add(`ssh2-fastPut-16x255k`, rate(performance.now() - t0));
    t0 = performance.now(); await new Promise<void>((res, rej) => sftp.fastGet(remote, "/tmp/ssh2-bench-dst", opts, (e: any) => (e ? rej(e) : res()))); add(`ssh2-fastGet-16x255k`, rate(performance.now() - t0));
  }
  sftp.end();
  const sc = new SftpClient();
  await sc.connect({ host: sshd.host, port: sshd.port, username: sshd.users.plain.name, privateKey: readFileSync(sshd.clientKeyPath) });
  (sc as any).client.setNoDelay(true);
  for (let round = 0; round < 2; round++) {
    let t0 = performance.now(); await sc.fastPut(src, remote, { concurrency: 16, chunkSize: 255 * 1024 }); add("sftp-client-fastPut", rate(performance.now() - t0));
    t0 = performance.now(); await sc.fastGet(remote, "/tmp/ssh2-bench-dst", { concurrency: 16, chunkSize: 255 * 1024 }); add("sftp-client-fastGet", rate(performance.now() - t0));
    t0 = performance.now(); await sc.put(src, remote); add("sftp-client-put-stream", rate(performance.now() - t0));
    t0 = performance.now(); await sc.get(remote, "/tmp/ssh2-bench-dst"); add("sftp-client-get-stream", rate(performance.now() - t0));
  }
  await sc.end();
  writeFileSync("/tmp/small", "x");
  let t0 = performance.now();
  for (let i = 0; i < 30; i++) await c.upload({ localPath: "/tmp/small", remotePath: remote + "-small" });
  add("tunnel-1B-upload-ms (session reused)", (performance.now() - t0) / 30);
  for (let round = 0; round < 3; round++) {
    const n = 50; t0 = performance.now();
    for (let i = 0; i < n; i++) { const q = c.spawn({ command: "true" }); q.stdin.end(); q.stdout.resume(); q.stderr.resume(); await q.exit; }
    add("exec-true-ms", (performance.now() - t0) / n);
    t0 = performance.now(); for (let i = 0; i < n; i++) await c.ping(); add("ping-ms", (performance.now() - t0) / n);
  }
  await c.close();
  writeFileSync("/tmp/ssh2-smoke.txt", JSON.stringify(out, null, 1));
  expect(true).toBe(true);
}, 600_000);
