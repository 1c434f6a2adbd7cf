/**
 * `tunnel demo`: tunnel's three usage examples — a command with env, a deployment-style script, an upload with
 * verification and progress — through the real stack (ssh2 transport → pool → executor, console tracer) against a
 * throwaway SSH server started in this process on 127.0.0.1. Needs no sshd, no root and no network.
 *
 * Everything it creates lives in one temporary folder (the server's files, the uploaded file, the "deployed"
 * release, the scripts' temp folders) and is removed at the end, as is the server with every process it started.
 */
import { randomBytes } from "node:crypto";
import { mkdir, mkdtemp, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DefaultExecutorConfig, Executor, Redactor, TunnelError, rejectUnknownOptions } from "@tunnel-sh/core";
import type { Progress, Result, Target, TransferResult } from "@tunnel-sh/core";
import { ConnectionPool, DefaultPoolConfig } from "@tunnel-sh/pool";
import type { TestServer, TestServerOptions } from "@tunnel-sh/embedded-server";
import { ConsoleTracer } from "@tunnel-sh/tracer-console";
import { Ssh2Transport } from "@tunnel-sh/transport-ssh2";
import { ExitCode, formatBytes, formatDuration, useColor, type OutputStream } from "./output.js";
import { SharedTerminal } from "./progress.js";

export interface DemoOptions {
  readonly stdout: OutputStream;
  readonly stderr: OutputStream;
  readonly env: Readonly<Record<string, string | undefined>>;
  /** How the console tracer prints operations. */
  readonly format: "pretty" | "json";
  /** Aborts the running example; the demo still cleans up, then resolves with 130. */
  readonly signal?: AbortSignal;
  /** Starts the SSH server. Default: `startTestServer` from `@tunnel-sh/embedded-server`. */
  readonly startServer?: (options: TestServerOptions) => Promise<TestServer>;
}

const DEPLOY_SCRIPT = `#!/bin/sh
set -e
echo "Starting deployment to $DEPLOY_ENV..."
app_dir="$1"
release="$app_dir/releases/$(date +%Y%m%d%H%M%S)-$$"
mkdir -p "$release"
echo "release built by $(id -un) on $(hostname)" > "$release/VERSION"
ln -sfn "$release" "$app_dir/current"
echo "current -> $(readlink "$app_dir/current")"
echo "Deployment completed"
`;

/** Size of the file the upload example moves: big enough for the progress bar to move. */
const UPLOAD_BYTES = 24 * 1024 * 1024;

const DEMO_OPTIONS = Object.keys({
  stdout: true,
  stderr: true,
  env: true,
  format: true,
  signal: true,
  startServer: true,
} satisfies Record<keyof DemoOptions, true>);

export async function runDemo(options: DemoOptions): Promise<number> {
  rejectUnknownOptions(options, DEMO_OPTIONS, "runDemo");
  // With JSON traces, stdout carries the JSON lines alone (a program reads them); the prose goes to stderr.
  const out = options.format === "json" ? options.stderr : options.stdout;
  const color = useColor(out, options.env);
  const bold = (text: string) => (color ? `\u001b[1m${text}\u001b[0m` : text);
  const dim = (text: string) => (color ? `\u001b[2m${text}\u001b[0m` : text);
  const say = (text = "") => out.write(`${text}\n`);
  const indent = (text: string) =>
    text
      .replace(/\n$/, "")
      .split("\n")
      .map((line) => `    ${line}`)
      .join("\n");

  const startServer = options.startServer ?? (await import("@tunnel-sh/embedded-server")).startTestServer;
  const workspace = await mkdtemp(join(tmpdir(), "tunnel-demo-"));
  let server: TestServer | undefined;
  let pool: ConnectionPool | undefined;
  let failures = 0;
  try {
    // Remote temp files (the script's private folder) go to the workspace too, so nothing outlives the demo.
    server = await startServer({ users: [{ name: "deploy" }], env: { TMPDIR: workspace } });
    const target: Target = server.target;
    say(bold("tunnel demo"));
    say(`An SSH server for this demo listens on ${server.host}:${server.port} (host key ${server.hostPublicKey.slice(0, 32)}...).`);
    say(`Its commands run on this machine as you; every file lives under ${workspace}, removed at the end.`);
    say(dim("Stack: Ssh2Transport (key auth, known_hosts verified) -> ConnectionPool -> Executor, traced by ConsoleTracer."));
    say();

    const redactor = new Redactor();
    const terminal = new SharedTerminal(out);
    const traces = options.format === "json" ? options.stdout : terminal;
    const tracer = new ConsoleTracer({ stream: traces, format: options.format, level: "info", colors: color && options.format === "pretty", redactor });
    const transport = new Ssh2Transport({ identityFile: server.clientKeyPath, knownHostsFile: server.knownHostsPath, configFile: false, agent: false });
    pool = new ConnectionPool(transport, DefaultPoolConfig(), tracer);
    const executor = new Executor(pool, DefaultExecutorConfig(), tracer, { redactor });
    const signal = options.signal;
    const withSignal = signal ? { signal } : {};

    const report = (result: Result) => {
      say(`  exit code: ${result.exitCode ?? result.signal}   duration: ${formatDuration(result.durationMs)}   attempts: ${result.attempts}`);
      if (result.stdout !== "") say(`  output:\n${indent(result.stdout)}`);
      if (result.stderr !== "") say(`  stderr:\n${indent(result.stderr)}`);
      if (result.exitCode !== 0) failures += 1;
      say();
    };
    const attempt = async <T>(title: string, code: string, work: () => Promise<T>, show: (value: T) => void | Promise<void>) => {
      say(bold(title));
      say(dim(indent(code)));
      try {
        await show(await work());
      } catch (error) {
        if (signal?.aborted) throw error;
        failures += 1;
        const message = redactor.redact(error instanceof Error ? error.message : String(error));
        say(`  failed: ${TunnelError.is(error) ? `${error.code}: ` : ""}${message}`);
        say();
      }
    };

    await attempt(
      "1. A command with environment variables",
      `executor.runCommand({ host, user: "deploy", cmd: 'echo "LC_ALL=$LC_ALL"; uname -sr', env: { LC_ALL: "C" }, timeout: 30_000 })`,
      () => executor.runCommand({ ...target, cmd: 'echo "LC_ALL=$LC_ALL"; uname -sr', env: { LC_ALL: "C" }, timeout: 30_000, ...withSignal }),
      report,
    );

    const appDir = join(workspace, "srv", "myapp");
    await attempt(
      "2. A deployment-style script",
      `executor.runScript({ host, user: "deploy", content: deployScript, interpreter: "/bin/sh", args: ["${appDir}"], env: { DEPLOY_ENV: "production" }, timeout: 300_000 })`,
      () =>
        executor.runScript({
          ...target,
          content: DEPLOY_SCRIPT,
          interpreter: "/bin/sh",
          args: [appDir],
          env: { DEPLOY_ENV: "production" },
          timeout: 300_000,
          ...withSignal,
        }),
      report,
    );

    const localFile = join(workspace, "local", "myapp");
    const remoteFile = join(workspace, "remote", "myapp-new");
    await mkdir(join(workspace, "local"), { recursive: true });
    await mkdir(join(workspace, "remote"), { recursive: true });
    await writeFile(localFile, Buffer.concat([Buffer.from("#!/bin/sh\necho myapp\nexit 0\n"), randomBytes(UPLOAD_BYTES)]));
    const progress = out.isTTY === true && options.format === "pretty" ? new (await import("./bar-progress.js")).BarProgress(out, ["upload"]) : undefined;
    let reported = 0;
    await attempt(
      "3. An upload, verified with sha256, with progress",
      `executor.transferFile({ host, user: "deploy", direction: "upload", source: "${localFile}", destination: "${remoteFile}", mode: "0755", verify: "sha256", onProgress })`,
      async () => {
        terminal.progress = progress;
        const onBar = progress?.start("upload");
        try {
          const result = await executor.transferFile({
            ...target,
            direction: "upload",
            source: localFile,
            destination: remoteFile,
            mode: "0755",
            verify: "sha256",
            onProgress: (update: Progress) => {
              if (onBar) return onBar(update);
              // Off a terminal: a line at each quarter.
              const quarter = update.total ? Math.floor((update.bytes / update.total) * 4) : 0;
              if (quarter > reported) {
                reported = quarter;
                say(`  progress: ${quarter * 25}% (${formatBytes(update.bytes)} of ${formatBytes(update.total ?? update.bytes)})`);
              }
            },
            ...withSignal,
          });
          progress?.finish("upload", result.bytes);
          return result;
        } finally {
          progress?.stop();
        }
      },
      async (result: TransferResult) => {
        const info = await stat(remoteFile);
        say(
          `  uploaded ${formatBytes(result.bytes)} in ${formatDuration(result.durationMs)}, attempts: ${result.attempts}, ` +
            `sha256 verified: ${result.verified}, mode on the host: ${(info.mode & 0o777).toString(8)}`,
        );
        say();
      },
    );

    const stats = executor.stats();
    say(bold("Executor stats"));
    say(`  operations: ${stats.operations}, attempts: ${stats.attempts}, retries: ${stats.retries}, failures: ${stats.failures}`);
    say();
  } catch (error) {
    if (!options.signal?.aborted) throw error;
  } finally {
    await pool?.close();
    await server?.close();
    await rm(workspace, { recursive: true, force: true });
  }
  if (options.signal?.aborted) {
    options.stderr.write("tunnel demo: interrupted; the server is stopped and its files removed\n");
    return ExitCode.INTERRUPTED;
  }
  say(`Done: the server is stopped and ${workspace} is removed.`);
  return failures === 0 ? ExitCode.OK : ExitCode.HOST_FAILED;
}
