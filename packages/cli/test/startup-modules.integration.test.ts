/**
 * Which packages the built `tunnel` executable loads: `--help` and `--version` load tunnel's own CLI files only
 * (commander is bundled into them); `run` on one host loads what that run uses (core, the pool, the chosen transport) and nothing for
 * inventories, progress bars, tracing, the other transport or the demo. Every file a run loads is logged by a
 * preloaded loader hook (test/module-log.mjs); this asserts package names, not how long anything takes.
 */
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, sep } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestServer, type TestServer } from "@tunnel-sh/embedded-server";
import { ExitCode } from "../src/index.js";
import { BIN, assertFreshBuild, start, type Finished } from "./process.js";

const MODULE_LOG = join(import.meta.dirname, "module-log.mjs");
const TEST_DIR = import.meta.dirname + sep;

/** `@tunnel-sh/<folder>` for a workspace file, the package name for a file under node_modules. */
function packageOf(path: string): string | undefined {
  const nodeModules = path.lastIndexOf(`${sep}node_modules${sep}`);
  if (nodeModules >= 0) {
    const parts = path.slice(nodeModules + "/node_modules/".length).split(sep);
    return parts[0]?.startsWith("@") ? `${parts[0]}/${parts[1]}` : parts[0];
  }
  const workspace = /[\\/]packages[\\/]([^\\/]+)[\\/]/.exec(path);
  return workspace ? `@tunnel-sh/${workspace[1]}` : undefined;
}

let logDir: string;

/** Run the built executable with the module log preloaded; resolves with its result and the packages it loaded. */
async function loaded(args: readonly string[]): Promise<{ result: Finished; packages: string[] }> {
  const log = join(logDir, `modules-${Math.random().toString(36).slice(2)}.txt`);
  const running = start(process.execPath, ["--import", MODULE_LOG, BIN, ...args], { env: { ...process.env, TUNNEL_MODULE_LOG: log, NO_COLOR: "1" } });
  const timer = setTimeout(() => running.child.kill("SIGKILL"), 60_000);
  const result = await running.finished.finally(() => clearTimeout(timer));
  const files = (await readFile(log, "utf8")).split("\n").filter((line) => line !== "" && !line.startsWith(TEST_DIR));
  const packages = new Set<string>();
  for (const file of files) {
    const name = packageOf(file);
    if (name === undefined) throw new Error(`a file of no package was loaded: ${file}`);
    packages.add(name);
  }
  return { result, packages: [...packages].sort() };
}

/** Never loaded by a run on one host without an inventory, progress bars or -v. */
const NOT_FOR_ONE_HOST = ["yaml", "cli-progress", "@tunnel-sh/tracer-console", "@tunnel-sh/tracer-otel", "@tunnel-sh/embedded-server", "@tunnel-sh/testing"];

describe("what the tunnel executable loads", () => {
  let server: TestServer;

  beforeAll(async () => {
    assertFreshBuild();
    logDir = await mkdtemp(join(tmpdir(), "tunnel-cli-modules-"));
    server = await startTestServer();
  });

  afterAll(async () => {
    await server?.close();
    await rm(logDir, { recursive: true, force: true });
  });

  it.each([["--help"], ["--version"]])("%s loads the CLI's own files (commander bundled in), nothing else", async (flag) => {
    const { result, packages } = await loaded([flag]);
    expect(result.code, result.stderr).toBe(ExitCode.OK);
    expect(result.stdout).not.toBe("");
    expect(packages).toEqual(["@tunnel-sh/cli"]);
  });

  const hostArgs = () => [
    "-H",
    `${server.target.user}@${server.host}:${server.port}`,
    "-I",
    server.clientKeyPath,
    "--known-hosts",
    server.knownHostsPath,
    "-F",
    "/dev/null",
  ];

  it("run over ssh2 on one host loads core, the pool, the ssh2 transport and ssh2: not the OpenSSH transport, YAML, bars, tracers or the demo", async () => {
    const { result, packages } = await loaded(["run", ...hostArgs(), "--", "echo", "loaded"]);
    expect(result.code, result.stderr).toBe(ExitCode.OK);
    expect(result.stdout).toContain("loaded");
    expect(packages).toEqual(expect.arrayContaining(["@tunnel-sh/cli", "@tunnel-sh/core", "@tunnel-sh/pool", "@tunnel-sh/transport-ssh2", "ssh2"]));
    for (const name of [...NOT_FOR_ONE_HOST, "@tunnel-sh/transport-openssh"]) expect(packages).not.toContain(name);
  });

  it("run over OpenSSH on one host loads core, the pool and the OpenSSH transport: not ssh2", async () => {
    const { result, packages } = await loaded(["run", "--transport", "openssh", ...hostArgs(), "--", "echo", "loaded"]);
    expect(result.code, result.stderr).toBe(ExitCode.OK);
    expect(result.stdout).toContain("loaded");
    expect(packages).toEqual(["@tunnel-sh/cli", "@tunnel-sh/core", "@tunnel-sh/pool", "@tunnel-sh/transport-openssh"]);
  });
});
