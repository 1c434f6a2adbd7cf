/**
 * A private network namespace with a second sshd in it, reached over a veth pair, where nft rules make the link
 * drop SYNs (a connect timeout) or lose packets at random. Everything happens inside the namespace this file
 * creates and on its own 10.x /24: no rule touches the machine's own tables, and no packet leaves the machine.
 *
 * The lab's sshd reuses a test sshd's config and host key (same accounts, same client key); only its address,
 * port and pid file differ.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Sshd } from "@tunnel-sh/testing";
import { descendantsOf, eventually, processTable } from "./fault-processes.js";
import { run } from "./fault-run.js";

const PREFIX = "tunnelf";
const TABLE = "tunnel_fault";

export interface NetnsLab {
  readonly namespace: string;
  /** The sshd's address inside the namespace (10.a.b.2). */
  readonly host: string;
  readonly port: number;
  /** known_hosts holding the lab sshd's key under `[host]:port`. */
  readonly knownHostsPath: string;
  readonly clientKeyPath: string;
  /** Drop every packet to the sshd port: new connects time out, open connections go silent. */
  dropAll(): Promise<void>;
  /** Drop `percent` % of the packets to and from the sshd port, at random (nft numgen). */
  loss(percent: number): Promise<void>;
  /** Remove every rule. */
  clear(): Promise<void>;
  /** Packets the rules dropped so far. */
  dropped(): Promise<number>;
  /** Stop the sshd, delete the veth pair and the namespace. Idempotent. */
  stop(): Promise<void>;
}

async function ip(...args: string[]): Promise<string> {
  const result = await run("ip", args);
  if (result.code !== 0) throw new Error(`ip ${args.join(" ")} failed (${result.code}): ${result.stderr.trim()}`);
  return result.stdout;
}

async function nft(namespace: string, ...args: string[]): Promise<string> {
  const result = await run("ip", ["netns", "exec", namespace, "nft", ...args]);
  if (result.code !== 0) throw new Error(`nft ${args.join(" ")} failed (${result.code}): ${result.stderr.trim()}`);
  return result.stdout;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Labs of test processes that died without `stop()`: their namespaces and veths are removed. */
async function sweepStale(): Promise<void> {
  const list = await run("ip", ["netns", "list"]);
  for (const line of list.stdout.split("\n")) {
    const name = line.trim().split(/\s+/)[0] ?? "";
    const match = new RegExp(`^${PREFIX}(\\d+)$`).exec(name);
    if (!match || alive(Number(match[1]))) continue;
    const pids = await run("ip", ["netns", "pids", name]);
    for (const pid of pids.stdout.split(/\s+/).filter(Boolean)) {
      try {
        process.kill(Number(pid), "SIGKILL");
      } catch {
        // gone
      }
    }
    await run("ip", ["link", "del", `${name}a`]);
    await run("ip", ["netns", "del", name]);
  }
}

/** Waits until something at host:port answers with an SSH banner. */
async function waitForBanner(host: string, port: number, timeoutMs: number): Promise<void> {
  const banner = () =>
    new Promise<boolean>((resolve) => {
      const socket = connect({ host, port });
      const done = (ok: boolean) => {
        socket.destroy();
        resolve(ok);
      };
      socket.setTimeout(1_000, () => done(false));
      socket.once("data", (chunk: Buffer) => done(chunk.toString("latin1").startsWith("SSH-")));
      socket.once("error", () => done(false));
    });
  if (!(await eventually(banner, timeoutMs))) throw new Error(`the lab sshd did not answer on ${host}:${port} within ${timeoutMs} ms`);
}

/**
 * Create the namespace `tunnelf<pid>`, a veth pair `tunnelf<pid>a` (here, 10.a.b.1/24) ↔ `tunnelf<pid>b` (inside,
 * 10.a.b.2/24), and start an sshd inside on port 2222 with `sshd`'s config and host key.
 */
export async function startNetnsLab(sshd: Sshd): Promise<NetnsLab> {
  await sweepStale();
  const namespace = `${PREFIX}${process.pid}`;
  const outside = `${namespace}a`;
  const inside = `${namespace}b`;
  const a = 64 + (process.pid % 128);
  const b = 1 + (Math.floor(process.pid / 128) % 250);
  const subnet = `10.${a}.${b}`;
  const host = `${subnet}.2`;
  const port = 2222;
  const dir = await mkdtemp(join(tmpdir(), "tunnel-netns-lab-"));
  let child: ChildProcess | undefined;
  let stopping: Promise<void> | undefined;

  const stop = () =>
    (stopping ??= (async () => {
      const pid = child?.pid;
      if (pid !== undefined) {
        // sshd's sessions call setsid: kill the listener's whole tree, not its process group.
        for (const entry of [{ pid }, ...descendantsOf(pid, processTable())]) {
          try {
            process.kill(entry.pid, "SIGKILL");
          } catch {
            // gone
          }
        }
        await eventually(() => !alive(pid), 5_000);
      }
      // The veth first: `ip netns del` alone frees the pair asynchronously.
      await run("ip", ["link", "del", outside]);
      await run("ip", ["netns", "del", namespace]);
      await eventually(async () => (await run("ip", ["link", "show", outside])).code !== 0, 5_000);
      await rm(dir, { recursive: true, force: true });
    })());

  try {
    if ((await run("ip", ["route", "show", `${subnet}.0/24`])).stdout.trim() !== "") {
      throw new Error(`${subnet}.0/24 is already routed on this machine; refusing to create the lab there`);
    }
    await ip("netns", "add", namespace);
    await ip("link", "add", outside, "type", "veth", "peer", "name", inside);
    await ip("link", "set", inside, "netns", namespace);
    await ip("addr", "add", `${subnet}.1/24`, "dev", outside);
    await ip("link", "set", outside, "up");
    await ip("netns", "exec", namespace, "ip", "addr", "add", `${host}/24`, "dev", inside);
    await ip("netns", "exec", namespace, "ip", "link", "set", inside, "up");
    await ip("netns", "exec", namespace, "ip", "link", "set", "lo", "up");
    // Never let lab traffic take another route off the machine.
    const route = await ip("route", "get", host);
    if (!route.includes(`dev ${outside}`)) throw new Error(`${host} is not routed through ${outside}: ${route.trim()}`);

    await nft(namespace, "add", "table", "inet", TABLE);
    await nft(namespace, "add", "chain", "inet", TABLE, "in", "{ type filter hook input priority 0; policy accept; }");
    await nft(namespace, "add", "chain", "inet", TABLE, "out", "{ type filter hook output priority 0; policy accept; }");

    const config = (await readFile(join(sshd.dir, "sshd_config"), "utf8"))
      .split("\n")
      .map((line) => {
        if (/^Port\s/i.test(line)) return `Port ${port}`;
        if (/^ListenAddress\s/i.test(line)) return `ListenAddress ${host}`;
        if (/^PidFile\s/i.test(line)) return `PidFile ${join(dir, "sshd.pid")}`;
        return line;
      })
      .join("\n");
    await writeFile(join(dir, "sshd_config"), config, { mode: 0o600 });
    const knownHostsPath = join(dir, "known_hosts");
    await writeFile(knownHostsPath, `[${host}]:${port} ${sshd.hostPublicKey}\n`);
    child = spawn("ip", ["netns", "exec", namespace, "/usr/sbin/sshd", "-D", "-f", join(dir, "sshd_config"), "-E", join(dir, "sshd.log")], {
      stdio: "ignore",
    });
    child.unref();
    child.on("error", () => {});
    await waitForBanner(host, port, 10_000);

    const chains = async (rules: (chain: "in" | "out") => string[][]) => {
      await nft(namespace, "flush", "table", "inet", TABLE);
      for (const chain of ["in", "out"] as const) for (const rule of rules(chain)) await nft(namespace, "add", "rule", "inet", TABLE, chain, ...rule);
    };
    return {
      namespace,
      host,
      port,
      knownHostsPath,
      clientKeyPath: sshd.clientKeyPath,
      dropAll: () => chains((chain) => (chain === "in" ? [["tcp", "dport", String(port), "counter", "drop"]] : [])),
      loss: (percent) =>
        chains((chain) => [
          ["tcp", chain === "in" ? "dport" : "sport", String(port), "numgen", "random", "mod", "100", "<", String(Math.round(percent)), "counter", "drop"],
        ]),
      clear: () => nft(namespace, "flush", "table", "inet", TABLE).then(() => undefined),
      dropped: async () => {
        const listing = await nft(namespace, "list", "table", "inet", TABLE);
        return [...listing.matchAll(/counter packets (\d+)/g)].reduce((sum, match) => sum + Number(match[1]), 0);
      },
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}
