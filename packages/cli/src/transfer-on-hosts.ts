/** `tunnel put` and `tunnel get`: one file or tree to or from every host, with progress bars on a terminal. */
import { mkdir } from "node:fs/promises";
import { basename, dirname } from "node:path";
import type { Progress } from "@tunnel-sh/core";
import type { CliIo } from "./cli.js";
import type { TransferOptions } from "./command-options.js";
import { prepareHosts } from "./host-selection.js";
import { describeTarget, type HostEntry } from "./hosts.js";
import { onEveryHost } from "./on-every-host.js";
import { formatBytes, formatDuration } from "./output.js";
import { NoProgress, type TransferProgress } from "./progress.js";
import { resolveSudo, sudoRedactor } from "./sudo-options.js";
import { UsageError } from "./usage-error.js";

/** `owner[:group]` from `--chown`. */
function parseChown(value: string | undefined): { owner?: string; group?: string } {
  if (value === undefined) return {};
  const [owner, group, extra] = value.split(":");
  if (extra !== undefined || (owner === "" && (group === undefined || group === "")))
    throw new UsageError(`--chown "${value}": expected owner, owner:group or :group`);
  return { ...(owner ? { owner } : {}), ...(group ? { group } : {}) };
}

/** A destination path for one host: `{host}` becomes the host's name. */
export function pathForHost(template: string, host: HostEntry): string {
  return template.split("{host}").join(host.name.replace(/[/\\]/g, "_"));
}

export async function transferOnHosts(
  io: CliIo,
  options: TransferOptions,
  direction: "upload" | "download",
  source: string,
  destination: string,
): Promise<number> {
  const ownership = parseChown(options.chown);
  const hosts = await prepareHosts(options);
  if (direction === "download" && hosts.length > 1 && !destination.includes("{host}")) {
    throw new UsageError(`get: with ${hosts.length} hosts the local path needs {host} (e.g. './${basename(source)}.{host}')`);
  }
  const sudo = await resolveSudo(io, options);
  // Bars only for a terminal: other runs never load cli-progress.
  const bars = options.json !== true && io.stderr.isTTY === true ? (await import("./bar-progress.js")).BarProgress : undefined;
  let progress: TransferProgress = new NoProgress(io.stderr);
  const destinations = new Map(hosts.map((host) => [host.name, pathForHost(destination, host)]));
  if (direction === "download" && destination.includes("{host}")) {
    for (const target of new Set([...destinations.values()].map((path) => dirname(path)))) await mkdir(target, { recursive: true });
  }
  const listeners = new Map<string, (update: Progress) => void>();
  return onEveryHost(
    io,
    direction === "upload" ? "put" : "get",
    options,
    hosts,
    sudoRedactor(sudo),
    (host) => ({
      type: "transfer",
      direction,
      source,
      destination: destinations.get(host.name) ?? destination,
      ...(options.verify ? { verify: "sha256" as const } : {}),
      ...(options.recursive ? { recursive: true } : {}),
      ...(options.overwrite !== undefined ? { overwrite: options.overwrite } : {}),
      ...(options.mode !== undefined ? { mode: options.mode } : {}),
      ...ownership,
      ...(sudo !== undefined ? { sudo } : {}),
      ...(options.timeout !== undefined ? { timeout: options.timeout } : {}),
    }),
    {
      onEvent: (session, host, event) => {
        if (event.type === "started") listeners.set(host.name, progress.start(host.name));
        else if (event.type === "progress") listeners.get(host.name)?.(event.progress);
        else if (event.type === "done") {
          const result = event.result;
          progress.finish(host.name, result.transfer?.bytes);
          if (session.json) return;
          if (result.transfer) {
            const transfer = result.transfer;
            const what = direction === "upload" ? "uploaded" : "downloaded";
            const files = transfer.files === 1 ? "" : ` in ${transfer.files} files`;
            const skipped = transfer.skipped > 0 ? `, ${transfer.skipped} skipped` : "";
            const verified = transfer.verified ? ", sha256 verified" : "";
            progress.log(
              `${session.prefix.prefix(host.name)}${what} ${formatBytes(transfer.bytes)}${files} to ${destinations.get(host.name) ?? destination} in ${formatDuration(transfer.durationMs)}${verified}${skipped}`,
            );
          } else if (result.error !== undefined) {
            progress.log(`${session.prefix.prefix(host.name)}failed: ${session.redactor.redact(result.error.message)}`);
          }
        }
      },
      outcome: (host, result) => {
        const transfer = result.transfer;
        if (!transfer) return undefined;
        return {
          name: host.name,
          target: describeTarget(host.target),
          ok: true,
          exitCode: null,
          signal: null,
          durationMs: Math.round(transfer.durationMs),
          attempts: transfer.attempts,
          transfer: {
            source,
            destination: destinations.get(host.name) ?? destination,
            bytes: transfer.bytes,
            files: transfer.files,
            verified: transfer.verified,
            skipped: transfer.skipped,
          },
        };
      },
    },
    {
      before: (session) => {
        if (bars !== undefined) {
          progress = new bars(
            io.stderr,
            session.hosts.map((host) => host.name),
          );
          session.terminal.progress = progress;
        }
      },
      after: () => progress.stop(),
    },
  );
}
