/**
 * The `tunnel` command line: parses arguments with commander (the options are in cli-options.ts) and hands each
 * command to its implementation (run-command.ts, run-script.ts, transfer-on-hosts.ts for put / get, worker.ts,
 * demo.ts), which it imports only when that command runs: `tunnel --help` and `tunnel --version` load commander and
 * nothing else.
 */
import { createRequire } from "node:module";
import { Command, CommanderError, Option } from "commander";
import {
  addExecOptions,
  addFleetOptions,
  addHostOptions,
  addIdentityOptions,
  addSudoOptions,
  addTransferOptions,
  collect,
  positiveInteger,
  retriesValue,
} from "./cli-options.js";
import type { ExecOptions, TransferOptions } from "./command-options.js";
import { EXIT_STATUSES, ExitCode, type OutputStream } from "./output.js";
import type { WorkerCliOptions } from "./worker.js";
import type { TerminalInput } from "./prompt.js";
import { InterruptedError, UsageError } from "./usage-error.js";

/** What the CLI reads and writes. `bin.ts` passes the process's; tests pass their own. */
export interface CliIo {
  readonly stdout: OutputStream;
  readonly stderr: OutputStream;
  /** For `--ask-sudo-pass`: a terminal; for `--stdin`: the input to send (`process.stdin` is both). */
  readonly stdin?: TerminalInput | undefined;
  /** Environment variables (for `--sudo-pass-env`, `NO_COLOR`). */
  readonly env: Readonly<Record<string, string | undefined>>;
  /** Aborted when the user interrupts (Ctrl-C): every operation is cancelled and its remote process stopped. */
  readonly interrupt?: AbortSignal | undefined;
}

const require = createRequire(import.meta.url);
const VERSION = (require("../package.json") as { version: string }).version;

/** Run the `tunnel` command line (`argv` without `node` and the script). Resolves with the exit status. */
export async function runCli(argv: readonly string[], io: CliIo): Promise<number> {
  let status: number = ExitCode.OK;
  const program = new Command("tunnel")
    .description("Run commands, scripts and file transfers on remote hosts over SSH.")
    .version(VERSION, "-V, --version")
    .enablePositionalOptions()
    .exitOverride()
    .configureOutput({
      writeOut: (text) => io.stdout.write(text),
      writeErr: (text) => io.stderr.write(text),
    })
    .addHelpText(
      "after",
      `
Exit status:
${EXIT_STATUSES.map(({ status, meaning }) => `  ${String(status).padEnd(5)}${meaning}`).join("\n")}

Examples:
  tunnel run -H web-1,deploy@web-2:2222 -e LC_ALL=C -- systemctl status nginx
  tunnel script -i inventory.yaml -g app deploy.sh -- --release 42
  tunnel put -i inventory.yaml -g app --verify --mode 0755 ./myapp /tmp/myapp-new
  tunnel get -H web-1,web-2 /var/log/nginx/error.log './logs/{host}.log'
  tunnel run -i inventory.yaml --serial 1,10%,100% --max-fail 5% -- systemctl reload nginx
  tunnel worker --redis redis://queue.internal:6379      (on each worker machine)
  tunnel run --redis redis://queue.internal:6379 -i inventory.yaml -- uptime
  tunnel demo`,
    );

  // `put <local> <remote>` and `get <remote> <local>`: the source comes first either way.
  const transferAction = (direction: "upload" | "download") => async (source: string, destination: string, _options: unknown, command: Command) => {
    const { transferOnHosts } = await import("./transfer-on-hosts.js");
    status = await transferOnHosts(io, command.opts<TransferOptions>(), direction, source, destination);
  };

  addExecOptions(
    addFleetOptions(
      addHostOptions(
        program
          .command("run")
          .description("run a shell command on every host")
          .argument("<command...>", "the command line (options go before it; or after --)")
          .passThroughOptions(),
      ),
    ),
  ).action(async (words: string[], _options: unknown, command: Command) => {
    const options = command.opts<ExecOptions>();
    const { runCommandOnHosts } = await import("./run-command.js");
    status = await runCommandOnHosts(io, options, words.join(" "));
  });

  addExecOptions(
    addFleetOptions(
      addHostOptions(
        program
          .command("script")
          .description("run a local script file on every host (uploaded to a private temp folder, removed afterwards)")
          .argument("<file>", "the script file")
          .argument("[args...]", "arguments for the script (after --)")
          .passThroughOptions()
          .option("--interpreter <path>", "interpreter (default: the script's shebang, else /bin/sh)"),
      ),
    ),
  ).action(async (file: string, args: string[], _options: unknown, command: Command) => {
    const options = command.opts<ExecOptions>();
    // Options end at the file; a `--` right after it only separates the script's arguments.
    const { runScriptOnHosts } = await import("./run-script.js");
    status = await runScriptOnHosts(io, options, file, args[0] === "--" ? args.slice(1) : args);
  });

  addTransferOptions(
    addSudoOptions(
      addFleetOptions(
        addHostOptions(
          program
            .command("put")
            .description("upload a file (or with -r a directory) to every host")
            .argument("<local>", "local file or directory")
            .argument("<remote>", "remote destination path; {host} is replaced by the host's name")
            .option("--mode <mode>", "file mode to set, octal (e.g. 0755)")
            .option("--chown <owner[:group]>", "owner (and group) to set; needs --sudo unless you log in as root"),
        ),
      ),
    ),
  ).action(transferAction("upload"));

  addTransferOptions(
    addFleetOptions(
      addHostOptions(
        program
          .command("get")
          .description("download a file (or with -r a directory) from every host; with several hosts put {host} in the local path")
          .argument("<remote>", "remote file or directory")
          .argument("<local>", "local destination; {host} is replaced by the host's name"),
      ),
    ),
  ).action(transferAction("download"));

  addIdentityOptions(
    program
      .command("worker")
      .description("take jobs from the queue on Redis (submitted with --redis) and run them from this machine, until Ctrl-C")
      .requiredOption("--redis <url>", "the Redis the producers submit to (redis://host:6379)")
      .option("--queue <name>", "queue name (default tunnel)")
      .option("--secret-env <name=VAR>", "a secret jobs may name (--sudo-secret name), read from the environment variable VAR (repeatable)", collect),
  )
    .addOption(new Option("--transport <name>", "how to reach hosts").choices(["ssh2", "openssh"]).default("ssh2"))
    .option("-c, --concurrency <n>", "jobs to run at once", positiveInteger(1000), 10)
    .option("--retries <n>", "retries of failures that are safe to repeat (connect, channel)", retriesValue)
    .option("-v, --verbose", "trace operations on stderr (-vv: also connections and the pool)", (_value: string, previous: number) => previous + 1, 0)
    .action(async (_options: unknown, command: Command) => {
      const { runWorker } = await import("./worker.js");
      status = await runWorker(io, command.opts<WorkerCliOptions>());
    });

  program
    .command("demo")
    .description("start a throwaway SSH server on 127.0.0.1 and run tunnel's usage examples against it")
    .option("--json", "print only the traces on stdout, as JSON lines (the walk-through goes to stderr)")
    .action(async (options: { json?: boolean }) => {
      const { runDemo } = await import("./demo.js");
      status = await runDemo({
        stdout: io.stdout,
        stderr: io.stderr,
        env: io.env,
        format: options.json ? "json" : "pretty",
        ...(io.interrupt ? { signal: io.interrupt } : {}),
      });
    });

  try {
    await program.parseAsync([...argv], { from: "user" });
    return status;
  } catch (error) {
    return await reportFailure(io, error);
  }
}

async function reportFailure(io: CliIo, error: unknown): Promise<number> {
  if (error instanceof CommanderError) return error.exitCode === 0 ? ExitCode.OK : ExitCode.USAGE;
  if (error instanceof InterruptedError) {
    io.stderr.write("tunnel: interrupted\n");
    return ExitCode.INTERRUPTED;
  }
  if (error instanceof UsageError) {
    io.stderr.write(`tunnel: ${error.message}\n`);
    return ExitCode.USAGE;
  }
  const { TunnelError } = await import("@tunnel-sh/core");
  if (TunnelError.is(error) && (error.code === "CONFIG" || error.code === "VALIDATION")) {
    io.stderr.write(`tunnel: ${error.message}\n`);
    return ExitCode.USAGE;
  }
  io.stderr.write(`tunnel: unexpected error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  return ExitCode.INTERNAL;
}
