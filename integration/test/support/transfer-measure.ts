/**
 * Measurements for the transfer benchmarks: peak RSS over a piece of work, throughput, and `scp` as the
 * yardstick.
 */
import { spawn } from "node:child_process";
import { sshClientArgs, type Sshd } from "@tunnel-sh/testing";

export interface RssMeasure {
  /** RSS just before the work, bytes. */
  readonly start: number;
  /** Highest RSS seen while the work ran: sampled every few ms, and the kernel's high-water mark when it rose. */
  readonly peak: number;
  readonly delta: number;
}

/** Run `work` and report how far the process's resident memory rose above where it started. */
export async function peakRssDuring(work: () => Promise<void>, sampleMs = 5): Promise<RssMeasure> {
  const start = process.memoryUsage.rss();
  // `maxRSS` (KiB) is a high-water mark over the process's whole life: it only tells something when it rises.
  const highWaterBefore = process.resourceUsage().maxRSS * 1024;
  let peak = start;
  const timer = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage.rss());
  }, sampleMs);
  try {
    await work();
  } finally {
    clearInterval(timer);
  }
  peak = Math.max(peak, process.memoryUsage.rss());
  const highWaterAfter = process.resourceUsage().maxRSS * 1024;
  if (highWaterAfter > highWaterBefore) peak = Math.max(peak, highWaterAfter);
  return { start, peak, delta: peak - start };
}

export const mib = (bytes: number): string => (bytes / (1024 * 1024)).toFixed(1);

/** MiB/s of `bytes` moved in `ms`. */
export const rate = (bytes: number, ms: number): number => bytes / (1024 * 1024) / (ms / 1000);

/** Time `work` in ms. */
export async function timed(work: () => Promise<unknown>): Promise<number> {
  const startedAt = performance.now();
  await work();
  return performance.now() - startedAt;
}

/**
 * Copy with OpenSSH's `scp` (SFTP protocol since 9.0), as `user`, with the test key and known_hosts only.
 * `from`/`to` are scp operands; write the remote one as `remote(path)`.
 */
export function scp(sshd: Sshd, user: string, from: string, to: string): Promise<void> {
  const args = [
    "-q",
    ...sshClientArgs(sshd),
    "-P",
    String(sshd.port),
    from.replace(/^remote:/, `${user}@${sshd.host}:`),
    to.replace(/^remote:/, `${user}@${sshd.host}:`),
  ];
  return new Promise((resolve, reject) => {
    const child = spawn("scp", args, { stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    child.on("error", reject);
    child.on("close", (code) => (code === 0 ? resolve() : reject(new Error(`scp exited ${code}: ${stderr.trim()}`))));
  });
}
