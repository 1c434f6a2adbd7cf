/**
 * How long `tunnel --help` takes to start and exit, next to a bare `node -e 0` measured in the same rounds: the
 * difference is what the CLI loads before it can print its help. The goal is at most 1.5× `node -e 0`.
 */
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { interleaved, type Context } from "../context.js";
import { timed } from "../stats.js";

const SECTION = "cli: start-up of the tunnel executable (wall time from spawn to exit)";

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
}
