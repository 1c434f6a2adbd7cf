/** Which hosts a command works on, and the option combinations refused before anything is asked or opened. */
import type { CommonOptions, QueueCliOptions, SudoCliOptions } from "./command-options.js";
import { parseHostList, withDefaults, type HostEntry } from "./hosts.js";
import { loadInventory, selectHosts } from "./inventory.js";
import { UsageError } from "./usage-error.js";

/** The hosts `-H` / `-i` / `-g` name, with `-l` / `-p` applied. */
export async function resolveHosts(options: Pick<CommonOptions, "hosts" | "inventory" | "group" | "user" | "port">): Promise<HostEntry[]> {
  let hosts: HostEntry[];
  if (options.inventory !== undefined) {
    const inventory = await loadInventory(options.inventory);
    const patterns = (options.hosts ?? []).flatMap((value) =>
      value
        .split(",")
        .map((part) => part.trim())
        .filter((part) => part !== ""),
    );
    hosts = selectHosts(inventory, { groups: options.group ?? [], patterns });
  } else {
    if ((options.group ?? []).length > 0) throw new UsageError("-g/--group needs an inventory (-i)");
    hosts = parseHostList(options.hosts ?? []);
  }
  if (hosts.length === 0) throw new UsageError("no hosts: name them with -H host1,host2 or -i inventory.yaml");
  return withDefaults(hosts, { user: options.user, port: options.port });
}

/** Hosts and connection options, checked before anything is asked (a password) or opened. */
export async function prepareHosts(options: CommonOptions & QueueCliOptions & SudoCliOptions): Promise<HostEntry[]> {
  if (options.insecureAcceptAnyHostKey && options.knownHosts !== undefined) {
    throw new UsageError("--known-hosts and --insecure-accept-any-host-key contradict each other; use one");
  }
  checkQueueOptions(options);
  return resolveHosts(options);
}

/** `--redis` runs on the workers, with their connection settings and secrets: options that only mean something here are refused. */
function checkQueueOptions(options: CommonOptions & QueueCliOptions & SudoCliOptions): void {
  if (options.redis === undefined) {
    for (const [name, value] of [
      ["--queue", options.queue],
      ["--sudo-secret", options.sudoSecret],
      ["--run-id", options.runId],
    ] as const) {
      if (value !== undefined) throw new UsageError(`${name} needs --redis`);
    }
    return;
  }
  if (options.askSudoPass || options.sudoPassEnv !== undefined) {
    throw new UsageError(
      "with --redis a password never goes into the queue: give the workers the secret (tunnel worker --secret-env NAME=VAR) and name it with --sudo-secret NAME",
    );
  }
  const local: ReadonlyArray<readonly [string, unknown]> = [
    ["-I/--identity", options.identity],
    ["--known-hosts", options.knownHosts],
    ["--insecure-accept-any-host-key", options.insecureAcceptAnyHostKey],
    ["-A/--forward-agent", options.forwardAgent],
    ["-F/--ssh-config", options.sshConfig],
    ["--retries", options.retries],
  ];
  for (const [name, value] of local) {
    if (value !== undefined && value !== false) throw new UsageError(`${name} is a setting of the workers with --redis (give it to tunnel worker)`);
  }
}
