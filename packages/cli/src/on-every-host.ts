/**
 * The frame `tunnel run`, `script`, `put` and `get` share: a fleet over every host, through this machine's stack or
 * the queue, with live output, Ctrl-C, and the summary or the JSON document at the end.
 */
import { Fleet } from "@tunnel-sh/core";
import type { FleetEvent, FleetHost, FleetHostResult, FleetOperation, FleetRunner, Redactor } from "@tunnel-sh/core";
import type { CliIo } from "./cli.js";
import type { CommonOptions, QueueCliOptions } from "./command-options.js";
import { errorOutcome, resultOutcome, skippedOutcome } from "./host-outcome.js";
import type { HostEntry } from "./hosts.js";
import { PrefixWriter, exitCodeFor, formatJson, formatSummary, useColor, type HostOutcome } from "./output.js";
import { SharedTerminal } from "./progress.js";
import type { TerminalInput } from "./prompt.js";
import { makeStack, stackOptions } from "./stack.js";

export interface Session {
  readonly hosts: readonly HostEntry[];
  /** Runs each host's operation: the local executor, or the queue's producer. */
  readonly runner: FleetRunner;
  readonly json: boolean;
  readonly prefix: PrefixWriter;
  readonly redactor: Redactor;
  /** stderr, shared by traces and progress bars. */
  readonly terminal: SharedTerminal;
  readonly env: CliIo["env"];
  /** The terminal second factors are asked on, when stdin is one. */
  readonly stdin: TerminalInput | undefined;
}

/** How a command shows each host live, and what its outcome looks like once the host is done. */
export interface HostView {
  /** A host's live event (output, progress, done), for the terminal. */
  onEvent?(session: Session, host: HostEntry, event: FleetEvent): void;
  /** The outcome of a host that ran to a result. */
  outcome?(host: HostEntry, result: FleetHostResult): HostOutcome | undefined;
}

/** What runs the hosts: this machine's executor, or the queue's workers with `--redis`. */
async function openRunner(
  options: CommonOptions & QueueCliOptions,
  session: Omit<Session, "runner">,
  redactor: Redactor,
): Promise<{ readonly runner: FleetRunner; close(): Promise<void> }> {
  if (options.redis !== undefined) {
    const { QueueProducer } = await import("@tunnel-sh/queue");
    const producer = new QueueProducer({
      redis: options.redis,
      ...(options.queue !== undefined ? { queue: options.queue } : {}),
      ...(options.sudoSecret !== undefined ? { sudoSecret: options.sudoSecret } : {}),
      ...(options.runId !== undefined ? { runId: options.runId } : {}),
    });
    return { runner: producer, close: () => producer.close() };
  }
  const stack = await makeStack(stackOptions(options, session.terminal, session.env, session.stdin), redactor);
  return { runner: stack.executor, close: () => stack.close() };
}

/**
 * The shared frame: a fleet over every host (concurrency, `--serial` batches, `--max-fail` budget) with a signal that
 * Ctrl-C aborts, through this machine's stack or the queue; then the summary or the JSON document. Resolves with the
 * exit status.
 */
export async function onEveryHost(
  io: CliIo,
  commandName: string,
  options: CommonOptions & QueueCliOptions,
  hosts: readonly HostEntry[],
  redactor: Redactor,
  operation: (host: HostEntry) => FleetOperation,
  view: HostView = {},
  hooks: { readonly before?: (session: Session) => void; readonly after?: (session: Session) => void } = {},
): Promise<number> {
  const terminal = new SharedTerminal(io.stderr);
  const base = {
    hosts,
    json: options.json === true,
    redactor,
    terminal,
    env: io.env,
    stdin: io.stdin,
    prefix: new PrefixWriter(
      hosts.map((host) => host.name),
      useColor(io.stdout, io.env),
    ),
  };
  const byName = new Map(hosts.map((host) => [host.name, host]));
  const fleetHosts = hosts.map((host) => ({ ...host.target, name: host.name }));
  const entry = (name: string) => byName.get(name) as HostEntry;
  const controller = new AbortController();
  // Checked before anything is opened: a bad batch size or budget is a usage error, and nothing runs.
  const fleetOptions = {
    hosts: fleetHosts,
    operation: (host: FleetHost) => operation(entry(host.name ?? "")),
    concurrency: options.concurrency,
    ...(options.serial !== undefined ? { serial: options.serial } : {}),
    ...(options.maxFail !== undefined ? { maxFailures: options.maxFail } : {}),
    signal: controller.signal,
  };
  const opened = await openRunner(options, base, redactor);
  const session: Session = { ...base, runner: opened.runner };
  let interrupted = false;
  const onInterrupt = () => {
    if (interrupted) return;
    interrupted = true;
    io.stderr.write("\ntunnel: interrupted; cancelling and stopping the remote processes\n");
    controller.abort();
  };
  io.interrupt?.addEventListener("abort", onInterrupt, { once: true });
  if (io.interrupt?.aborted) onInterrupt();
  let outcomes: HostOutcome[];
  try {
    hooks.before?.(session);
    const run = new Fleet(session.runner).run({
      ...fleetOptions,
      onEvent: (event) => {
        if (event.type === "batch" || event.type === "budget-spent") return;
        const host = entry(event.host);
        if (!session.json && (event.type === "output" || event.type === "done")) liveOutput(io, session, host, event);
        view.onEvent?.(session, host, event);
      },
    });
    const report = await run;
    outcomes = report.hosts.map((result) => {
      const host = entry(result.name);
      if (result.status === "skipped") return skippedOutcome(host, result.skipReason);
      if (result.error !== undefined) return errorOutcome(host, result.error, result.durationMs, redactor);
      const shown = view.outcome?.(host, result);
      if (shown) return shown;
      if (result.result) return resultOutcome(host, result.result);
      return errorOutcome(host, new Error("the operation returned no result"), result.durationMs, redactor);
    });
  } finally {
    hooks.after?.(session);
    io.interrupt?.removeEventListener("abort", onInterrupt);
    await opened.close();
  }
  if (session.json) io.stdout.write(formatJson(commandName, outcomes, interrupted));
  else io.stderr.write(`\n${formatSummary(outcomes)}`);
  return exitCodeFor(outcomes, interrupted);
}

/** `name | line` output as it arrives; what is left of a host's lines once it is done. */
function liveOutput(io: CliIo, session: Session, host: HostEntry, event: FleetEvent): void {
  if (event.type === "output") {
    session.prefix.write(event.stream === "stdout" ? io.stdout : io.stderr, host.name, event.stream, event.text);
  } else if (event.type === "done") {
    session.prefix.flush(io.stdout, host.name, "stdout");
    session.prefix.flush(io.stderr, host.name, "stderr");
  }
}
