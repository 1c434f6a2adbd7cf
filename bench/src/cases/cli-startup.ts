/**
 * How long `tunnel --help` takes to start and exit, next to a bare `node -e 0` measured in the same rounds: the
 * difference is what the CLI loads before it can print its help. The goal is at most 1.5× `node -e 0`.
 * And a whole `tunnel run -H <alias> -- true` on one host (each transport: connect, authenticate, run, exit), next to
 * `ssh <alias> true` with the same ssh_config, key and known_hosts: the goal is at most 1.5× ssh's wall time.
 */
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { interleaved, type Context } from "../context.js";
import { runChecked, sshOptions } from "../environment.js";
import { timed } from "../stats.js";

const SECTION = "cli: start-up of the tunnel executable (wall time from spawn to exit)";
const RUN_SECTION = "cli: `true` on one host, a new process and connection each (wall time from spawn to exit)";
const SSH = "ssh <alias> true";

/** The built `tunnel` executable, found through @tunnel-sh/cli's package.json. */
function tunnelBin(): string {
  const manifestPath = createRequire(import.meta.url).resolve("@tunnel-sh/cli/package.json");
  const manifest = JSON.parse(readFileSync(manifestPath, "utf8")) as { bin: { tunnel: string } };
  return join(dirname(manifestPath), manifest.bin.tunnel);
}

function run(args: readonly string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...args], { stdio: "ignore" });
    child.on("error", reject);
    child.on("exit", (code, signal) => (code === 0 ? resolve() : reject(new Error(`node ${args.join(" ")} exited with ${code ?? signal}`))));
  });
}

export async function cliStartup(context: Context): Promise<void> {
  const rounds = context.options.quick ? 10 : 40;
  const bin = tunnelBin();
  const tools: Array<readonly [string, () => Promise<number>]> = [
    ["tunnel --help", () => timed(() => run([bin, "--help"]))],
    ["tunnel --version", () => timed(() => run([bin, "--version"]))],
    ["node -e 0", () => timed(() => run(["-e", "0"]))],
  ];
  await interleaved(2, tools);
  const samples = await interleaved(rounds, tools);
  for (const [tool, values] of samples) {
    context.record({
      section: SECTION,
      case: `${rounds} runs each, interleaved`,
      tool,
      unit: "ms",
      samples: values,
      against: tool === "node -e 0" ? [] : ["node -e 0"],
      ...(tool === "tunnel --help" ? { note: "goal: ≤ 1.5× node -e 0" } : {}),
    });
  }
  await cliRun(context, bin, rounds);
}

async function cliRun(context: Context, bin: string, rounds: number): Promise<void> {
  const server = context.environment;
  const alias = server.aliases[0] as string;
  const access = ["-F", server.sshConfigPath, "-I", server.clientKeyPath, "--known-hosts", server.knownHostsPath, "-H", alias];
  const tools: Array<readonly [string, () => Promise<number>]> = [
    ...(["ssh2", "openssh"] as const).map(
      (transport) => [`tunnel run --transport ${transport}`, () => timed(() => run([bin, "run", "--transport", transport, ...access, "--", "true"]))] as const,
    ),
    [SSH, () => timed(() => runChecked("ssh", [...sshOptions(server, server.sshConfigPath), "-T", alias, "true"]))],
  ];
  await interleaved(2, tools);
  const samples = await interleaved(Math.max(5, Math.round(rounds / 2)), tools);
  for (const [tool, values] of samples) {
    context.record({
      section: RUN_SECTION,
      case: `${values.length} runs each, interleaved`,
      tool,
      unit: "ms",
      samples: values,
      against: tool === SSH ? [] : [SSH],
      ...(tool === SSH ? {} : { note: "goal: ≤ 1.5× ssh <alias> true" }),
    });
  }
}
