/**
 * The `tunnel` command line: parses arguments with commander and hands each command to its implementation
 * (host-operations.ts for run / script / put / get, demo.ts for the demo), which it imports only when that command
 * runs: `tunnel --help` and `tunnel --version` load commander and nothing else.
 */
import { createRequire } from "node:module";
import { Command, CommanderError, InvalidArgumentError, Option } from "commander";
import type { FleetAmount } from "@tunnel-sh/core";
import { parsePort } from "./hosts.js";
import { EXIT_STATUSES, ExitCode, type OutputStream } from "./output.js";
import type { ExecOptions, TransferOptions } from "./host-operations.js";
import type { WorkerCliOptions } from "./worker.js";
import type { TerminalInput } from "./prompt.js";
import { InterruptedError, UsageError } from "./usage-error.js";

/** What the CLI reads and writes. `bin.ts` passes the process's; tests pass their own. */
export interface CliIo {
  readonly stdout: OutputStream;
  readonly stderr: OutputStream;
  /** For `--ask-sudo-pass`: a terminal. */
  readonly stdin?: TerminalInput | undefined;
  /** Environment variables (for `--sudo-pass-env`, `NO_COLOR`). */
  readonly env: Readonly<Record<string, string | undefined>>;
  /** Aborted when the user interrupts (Ctrl-C): every operation is cancelled and its remote process stopped. */
  readonly interrupt?: AbortSignal | undefined;
}

const require = createRequire(import.meta.url);
const VERSION = (require("../package.json") as { version: string }).version;

const operations = () => import("./host-operations.js");

function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

function collectList(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), ...value.split(",").map((part) => part.trim()).filter((part) => part !== "")];
}

function positiveInteger(max: number) {
  return (value: string): number => {
    if (!/^\d+$/.test(value) || Number(value) < 1 || Number(value) > max) throw new InvalidArgumentError(`must be an integer from 1 to ${max}`);
    return Number(value);
  };
}

function retriesValue(value: string): number {
  if (!/^\d+$/.test(value) || Number(value) > 100) throw new InvalidArgumentError("must be an integer from 0 to 100");
  return Number(value);
}

function portValue(value: string): number {
  try {
    return parsePort(value, "port");
  } catch (error) {
    throw new InvalidArgumentError(error instanceof Error ? error.message : String(error));
  }
}

/**
 * A duration: `500ms`, `30s`, `5m`, `1h`; a plain number means seconds.
 * @example parseDuration("1.5m") // 90000
 */
export function parseDuration(text: string): number {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(text.trim());
  if (!match) throw new InvalidArgumentError(`"${text}" is not a duration (e.g. 500ms, 30s, 5m, 1h)`);
  const factor = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[match[2] ?? "s"] ?? 1000;
  const ms = Math.round(Number(match[1]) * factor);
  if (ms <= 0) throw new InvalidArgumentError("must be longer than 0");
  if (ms > 24 * 3_600_000) throw new InvalidArgumentError("must be at most 24h");
  return ms;
}

/**
 * `--serial` batch sizes: counts or percentages, comma-separated.
 * @example parseSerial("1,10%,100%") // [1, "10%", "100%"]
 */
export function parseSerial(text: string): FleetAmount[] {
  const parts = text.split(",").map((part) => part.trim());
  return parts.map((part) => {
    if (/^\d+$/.test(part) && Number(part) >= 1) return Number(part);
    if (/^\d+(\.\d+)?%$/.test(part) && Number(part.slice(0, -1)) > 0 && Number(part.slice(0, -1)) <= 100) return part as `${number}%`;
    throw new InvalidArgumentError(`"${part}" is not a batch size (a count ≥ 1 or a percentage like 10%; e.g. 1,10%,100%)`);
  });
}

/**
 * `--max-fail`: a count or a percentage of the hosts.
 * @example parseMaxFail("10%") // "10%"
 */
export function parseMaxFail(text: string): FleetAmount {
  const value = text.trim();
  if (/^\d+$/.test(value)) return Number(value);
  if (/^\d+(\.\d+)?%$/.test(value) && Number(value.slice(0, -1)) <= 100) return value as `${number}%`;
  throw new InvalidArgumentError(`"${text}" is not a failure budget (a count like 3 or a percentage like 10%)`);
}

function addFleetOptions(command: Command): Command {
  return command
    .option("--serial <sizes>", "rolling batches: sizes as counts or percentages, the last repeating (e.g. 1,10%,100%)", parseSerial)
    .option("--max-fail <n|p%>", "stop starting hosts once more than this many (or this share) have failed; 0 stops at the first failure", parseMaxFail)
    .option("--redis <url>", "submit through the queue on this Redis (run by `tunnel worker`s) instead of running here")
    .option("--queue <name>", "queue name with --redis (default tunnel)")
    .option("--sudo-secret <name>", "with --redis: the secret the workers use as the sudo password (implies --sudo)")
    .option("--run-id <id>", "with --redis: name this run; submitting it again runs nothing twice");
}

function addHostOptions(command: Command): Command {
  return command
    .option("-H, --hosts <list>", "hosts, comma-separated: host, user@host:port, [v6addr]:port, or ssh_config aliases; with -i, name patterns (* and ?)", collect)
    .option("-i, --inventory <file>", "inventory file (YAML or JSON) with hosts, groups and vars")
    .option("-g, --group <name>", "inventory group(s) to run on (repeatable, or comma-separated)", collectList)
    .option("-l, --user <user>", "login user for hosts that name none")
    .option("-p, --port <port>", "port for hosts that name none", portValue)
    .option("-F, --ssh-config <file>", "ssh_config file (default ~/.ssh/config)")
    .option("-I, --identity <file>", "private key file")
    .option("--known-hosts <file>", "known_hosts file to verify host keys against (default ~/.ssh/known_hosts)")
    .option("--insecure-accept-any-host-key", "do not verify host keys (throwaway hosts only)")
    .option("-A, --forward-agent", "forward the ssh-agent to the hosts (default: ssh_config's ForwardAgent)")
    .addOption(new Option("--transport <name>", "how to reach hosts").choices(["ssh2", "openssh"]).default("ssh2"))
    .option("-c, --concurrency <n>", "hosts to work on at once", positiveInteger(1000), 10)
    .option("--retries <n>", "retries of failures that are safe to repeat (connect, channel)", retriesValue)
    .option("-t, --timeout <duration>", "time limit per host (500ms, 30s, 5m, 1h; a plain number is seconds)", parseDuration)
    .option("--json", "print one JSON document with every host's result (no live output, no progress bars)")
    .option("-v, --verbose", "trace operations on stderr (-vv: also connections and the pool)", (_value: string, previous: number) => previous + 1, 0);
}

function addSudoOptions(command: Command): Command {
  return command
    .option("--sudo", "run through sudo (as root unless --sudo-user)")
    .option("-u, --sudo-user <user>", "run through sudo as this user (implies --sudo)")
    .option("--ask-sudo-pass", "ask for the sudo password on the terminal (implies --sudo)")
    .option("--sudo-pass-env <var>", "read the sudo password from this environment variable (implies --sudo)");
}

function addExecOptions(command: Command): Command {
  return addSudoOptions(command)
    .option("-e, --env <name=value>", "environment variable for the command (repeatable)", collect)
    .option("--cwd <dir>", "working directory on the host");
}

function addTransferOptions(command: Command): Command {
  return command
    .option("--verify", "verify the copy with sha256")
    .option("-r, --recursive", "transfer a directory tree")
    .addOption(new Option("--overwrite <policy>", "when the destination exists").choices(["replace", "skip", "error"]).default("replace"));
}

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

  addExecOptions(
    addFleetOptions(addHostOptions(
      program
        .command("run")
        .description("run a shell command on every host")
        .argument("<command...>", "the command line (options go before it; or after --)")
        .passThroughOptions(),
    )),
  ).action(async (words: string[], _options: unknown, command: Command) => {
    const options = command.opts<ExecOptions>();
    status = await (await operations()).runCommandOnHosts(io, options, words.join(" "));
  });

  addExecOptions(
    addFleetOptions(addHostOptions(
      program
        .command("script")
        .description("run a local script file on every host (uploaded to a private temp folder, removed afterwards)")
        .argument("<file>", "the script file")
        .argument("[args...]", "arguments for the script (after --)")
        .passThroughOptions()
        .option("--interpreter <path>", "interpreter (default: the script's shebang, else /bin/sh)"),
    )),
  ).action(async (file: string, args: string[], _options: unknown, command: Command) => {
    const options = command.opts<ExecOptions>();
    // Options end at the file; a `--` right after it only separates the script's arguments.
    status = await (await operations()).runScriptOnHosts(io, options, file, args[0] === "--" ? args.slice(1) : args);
  });

  addTransferOptions(
    addSudoOptions(
      addFleetOptions(addHostOptions(
        program
          .command("put")
          .description("upload a file (or with -r a directory) to every host")
          .argument("<local>", "local file or directory")
          .argument("<remote>", "remote destination path; {host} is replaced by the host's name")
          .option("--mode <mode>", "file mode to set, octal (e.g. 0755)")
          .option("--chown <owner[:group]>", "owner (and group) to set; needs --sudo unless you log in as root"),
      )),
    ),
  ).action(async (local: string, remote: string, _options: unknown, command: Command) => {
    const options = command.opts<TransferOptions>();
    status = await (await operations()).transferOnHosts(io, options, "upload", local, remote);
  });

  addTransferOptions(
    addFleetOptions(addHostOptions(
      program
        .command("get")
        .description("download a file (or with -r a directory) from every host; with several hosts put {host} in the local path")
        .argument("<remote>", "remote file or directory")
        .argument("<local>", "local destination; {host} is replaced by the host's name"),
    )),
  ).action(async (remote: string, local: string, _options: unknown, command: Command) => {
    const options = command.opts<TransferOptions>();
    status = await (await operations()).transferOnHosts(io, options, "download", remote, local);
  });

  program
    .command("worker")
    .description("take jobs from the queue on Redis (submitted with --redis) and run them from this machine, until Ctrl-C")
    .requiredOption("--redis <url>", "the Redis the producers submit to (redis://host:6379)")
    .option("--queue <name>", "queue name (default tunnel)")
    .option("--secret-env <name=VAR>", "a secret jobs may name (--sudo-secret name), read from the environment variable VAR (repeatable)", collect)
    .option("-F, --ssh-config <file>", "ssh_config file (default ~/.ssh/config)")
    .option("-I, --identity <file>", "private key file")
    .option("--known-hosts <file>", "known_hosts file to verify host keys against (default ~/.ssh/known_hosts)")
    .option("--insecure-accept-any-host-key", "do not verify host keys (throwaway hosts only)")
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
      status = await runDemo({ stdout: io.stdout, stderr: io.stderr, env: io.env, format: options.json ? "json" : "pretty", ...(io.interrupt ? { signal: io.interrupt } : {}) });
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
