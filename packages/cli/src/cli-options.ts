/** The options and option values of the `tunnel` commands, as commander parses them. */
import { InvalidArgumentError, Option, type Command } from "commander";
import type { FleetAmount } from "@tunnel-sh/core";
import { STDIN_LIMIT_TEXT } from "./command-input.js";
import { parsePort } from "./hosts.js";

export function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

function collectList(value: string, previous: string[] | undefined): string[] {
  return [
    ...(previous ?? []),
    ...value
      .split(",")
      .map((part) => part.trim())
      .filter((part) => part !== ""),
  ];
}

export function positiveInteger(max: number) {
  return (value: string): number => {
    if (!/^\d+$/.test(value) || Number(value) < 1 || Number(value) > max) throw new InvalidArgumentError(`must be an integer from 1 to ${max}`);
    return Number(value);
  };
}

export function retriesValue(value: string): number {
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

export function addFleetOptions(command: Command): Command {
  return command
    .option("--serial <sizes>", "rolling batches: sizes as counts or percentages, the last repeating (e.g. 1,10%,100%)", parseSerial)
    .option("--max-fail <n|p%>", "stop starting hosts once more than this many (or this share) have failed; 0 stops at the first failure", parseMaxFail)
    .option("--redis <url>", "submit through the queue on this Redis (run by `tunnel worker`s) instead of running here")
    .option("--queue <name>", "queue name with --redis (default tunnel)")
    .option("--sudo-secret <name>", "with --redis: the secret the workers use as the sudo password (implies --sudo)")
    .option("--run-id <id>", "with --redis: name this run; submitting it again runs nothing twice");
}

export function addHostOptions(command: Command): Command {
  return addIdentityOptions(
    command
      .option(
        "-H, --hosts <list>",
        "hosts, comma-separated: host, user@host:port, [v6addr]:port, or ssh_config aliases; with -i, name patterns (* and ?)",
        collect,
      )
      .option("-i, --inventory <file>", "inventory file (YAML or JSON) with hosts, groups and vars")
      .option("-g, --group <name>", "inventory group(s) to run on (repeatable, or comma-separated)", collectList)
      .option("-l, --user <user>", "login user for hosts that name none")
      .option("-p, --port <port>", "port for hosts that name none", portValue),
  )
    .option("-A, --forward-agent", "forward the ssh-agent to the hosts (default: ssh_config's ForwardAgent)")
    .addOption(new Option("--transport <name>", "how to reach hosts").choices(["ssh2", "openssh"]).default("ssh2"))
    .option("-c, --concurrency <n>", "hosts to work on at once", positiveInteger(1000), 10)
    .option("--retries <n>", "retries of failures that are safe to repeat (connect, channel)", retriesValue)
    .option("-t, --timeout <duration>", "time limit per host (500ms, 30s, 5m, 1h; a plain number is seconds)", parseDuration)
    .option("--json", "print one JSON document with every host's result (no live output, no progress bars)")
    .option("-v, --verbose", "trace operations on stderr (-vv: also connections and the pool)", (_value: string, previous: number) => previous + 1, 0);
}

/** Where keys, host keys and ssh_config come from: the host commands and `tunnel worker` take these alike. */
export function addIdentityOptions(command: Command): Command {
  return command
    .option("-F, --ssh-config <file>", "ssh_config file (default ~/.ssh/config)")
    .option("-I, --identity <file>", "private key file")
    .option("--known-hosts <file>", "known_hosts file to verify host keys against (default ~/.ssh/known_hosts)")
    .option("--insecure-accept-any-host-key", "do not verify host keys (throwaway hosts only)");
}

export function addSudoOptions(command: Command): Command {
  return command
    .option("--sudo", "run through sudo (as root unless --sudo-user)")
    .option("-u, --sudo-user <user>", "run through sudo as this user (implies --sudo)")
    .option("--ask-sudo-pass", "ask for the sudo password on the terminal (implies --sudo)")
    .option("--sudo-pass-env <var>", "read the sudo password from this environment variable (implies --sudo)");
}

export function addExecOptions(command: Command): Command {
  return addSudoOptions(command)
    .option("-e, --env <name=value>", "environment variable for the command (repeatable)", collect)
    .option("--cwd <dir>", "working directory on the host")
    .option(
      "--stdin",
      `send this machine's stdin to the command (or script): streamed to one host, read to its end first for several (at most ${STDIN_LIMIT_TEXT}); without it, stdin is empty`,
    );
}

export function addTransferOptions(command: Command): Command {
  return command
    .option("--verify", "verify the copy with sha256")
    .option("-r, --recursive", "transfer a directory tree")
    .addOption(new Option("--overwrite <policy>", "when the destination exists").choices(["replace", "skip", "error"]).default("replace"));
}
