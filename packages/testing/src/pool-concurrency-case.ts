/**
 * A pool's end-to-end case, for any `Pool` over any `Transport`: many concurrent short commands through pool leases,
 * then a report of what went wrong (failures, connections over the limit, channels still busy, connections or
 * handles left after `close()`).
 *
 * `@tunnel-sh/pool` runs it against the `FakeTransport` (whose `maxSessions` refuses channels like sshd), and the
 * cross-package integration suite against a real sshd over both transports:
 *
 * @example
 * const sshd = await startSshd({ maxSessions: 3 });
 * const report = await runPoolConcurrencyCase({
 *   transport: new Ssh2Transport({ knownHostsFile: sshd.knownHostsPath, ... }),
 *   createPool: (transport) => new ConnectionPool(transport, { maxConnectionsPerKey: 4, acquireTimeoutMs: 120_000 }),
 *   maxConnections: 4,
 *   target: { host: sshd.host, port: sshd.port, user: sshd.users.plain.name },
 * });
 * expect(checkPoolConcurrencyReport(report)).toEqual([]);
 */
import { hasCode } from "@tunnel-sh/core";
import type { ChannelError, Connection, ConnectOptions, ExitStatus, Lease, Pool, PoolStats, Target, Transport } from "@tunnel-sh/core";

/** Wraps a transport and counts its connections that are open (connected and not yet closed), and the peak. */
export class CountingTransport implements Transport {
  readonly name: string;
  open = 0;
  peak = 0;
  connects = 0;

  constructor(private readonly inner: Transport) {
    this.name = inner.name;
  }

  identity(target: Target): string {
    return this.inner.identity?.(target) ?? "";
  }

  async connect(target: Target, options?: ConnectOptions): Promise<Connection> {
    this.connects += 1;
    const connection = await this.inner.connect(target, options);
    this.open += 1;
    this.peak = Math.max(this.peak, this.open);
    let counted = true;
    const uncount = (): void => {
      if (!counted) return;
      counted = false;
      this.open -= 1;
    };
    connection.onClose(uncount);
    if (connection.closed) uncount();
    return connection;
  }
}

export interface PoolConcurrencyCaseOptions<P extends Pool> {
  readonly transport: Transport;
  /**
   * Builds the pool under test over the transport it is given (the case counts that transport's connections). Give
   * its acquires a generous timeout: on a loaded machine the last of 200 commands may wait longer than 30 s.
   */
  readonly createPool: (transport: Transport) => P;
  /** The pool's limit of connections to the target: the case checks it was never passed. */
  readonly maxConnections: number;
  readonly target: Target;
  /** Default 200. */
  readonly commands?: number;
  /** Default `sleep 0.05; echo ok`; it must print `ok`. */
  readonly command?: string;
  /** Tries per command when the server refuses a channel (refusals only; any other failure counts as one). Default 20. */
  readonly maxAttempts?: number;
}

export interface PoolConcurrencyReport<S extends PoolStats = PoolStats> {
  readonly commands: number;
  readonly successes: number;
  readonly failures: readonly unknown[];
  /** Channel refusals the case handed back with `lease.refused()`. */
  readonly refusals: number;
  /** The configured limit of connections to the key. */
  readonly maxConnections: number;
  /** The most connections the transport had open at once. */
  readonly peakConnections: number;
  /** Pool stats once every command finished, before `close()`. */
  readonly statsAtEnd: S;
  /** Connections the transport still had open after `close()` resolved. */
  readonly openAfterClose: number;
  /**
   * Handles that keep Node alive (sockets, child processes, pipes, timers, from `process.getActiveResourcesInfo()`)
   * that the run added and that were still there once `close()` resolved, by type. One-off requests in flight
   * (`FSReqCallback`, DNS lookups) end on their own and are not counted.
   */
  readonly handlesLeft: Readonly<Record<string, number>>;
}

const LASTING_HANDLES = new Set(["TCPSocketWrap", "TCPServerWrap", "TCPWrap", "PipeWrap", "ProcessWrap", "Timeout", "UDPWrap"]);

function countHandles(): Map<string, number> {
  const counts = new Map<string, number>();
  for (const resource of process.getActiveResourcesInfo()) {
    if (LASTING_HANDLES.has(resource)) counts.set(resource, (counts.get(resource) ?? 0) + 1);
  }
  return counts;
}

/** Run the commands through one pool, close it, and report. Never throws for a failed command: it is counted. */
export async function runPoolConcurrencyCase<P extends Pool>(options: PoolConcurrencyCaseOptions<P>): Promise<PoolConcurrencyReport<ReturnType<P["stats"]>>> {
  const handlesBefore = countHandles();
  const counting = new CountingTransport(options.transport);
  const pool = options.createPool(counting);
  const commands = options.commands ?? 200;
  const command = options.command ?? "sleep 0.05; echo ok";
  const maxAttempts = options.maxAttempts ?? 20;
  let refusals = 0;
  const runOne = async (): Promise<void> => {
    for (let attempt = 1; ; attempt += 1) {
      const lease = await pool.acquire(options.target);
      const outcome = await runOnLease(lease, command);
      if (outcome === "refused") {
        refusals += 1;
        if (attempt >= maxAttempts) throw new Error(`the channel was refused ${attempt} times`);
        continue;
      }
      if (outcome !== "ok\n") throw new Error(`unexpected output ${JSON.stringify(outcome)}`);
      return;
    }
  };
  let statsAtEnd: ReturnType<P["stats"]>;
  const failures: unknown[] = [];
  try {
    const results = await Promise.allSettled(Array.from({ length: commands }, runOne));
    for (const result of results) if (result.status === "rejected") failures.push(result.reason);
    statsAtEnd = pool.stats() as ReturnType<P["stats"]>;
  } finally {
    await pool.close();
  }
  const handlesLeft: Record<string, number> = {};
  for (const [resource, count] of countHandles()) {
    const added = count - (handlesBefore.get(resource) ?? 0);
    if (added > 0) handlesLeft[resource] = added;
  }
  return {
    handlesLeft,
    commands,
    successes: commands - failures.length,
    failures,
    refusals,
    maxConnections: options.maxConnections,
    peakConnections: counting.peak,
    statsAtEnd,
    openAfterClose: counting.open,
  };
}

/** What is wrong with a report, as readable lines; empty when the case passed. */
export function checkPoolConcurrencyReport(report: PoolConcurrencyReport): string[] {
  const problems: string[] = [];
  if (report.successes !== report.commands) {
    const first = report.failures[0];
    problems.push(`${report.successes}/${report.commands} succeeded; first failure: ${first instanceof Error ? first.message : String(first)}`);
  }
  if (report.peakConnections > report.maxConnections) {
    problems.push(`${report.peakConnections} connections were open at once, over the limit of ${report.maxConnections}`);
  }
  const stats = report.statsAtEnd;
  if (stats.busyChannels !== 0 || stats.waiting !== 0 || stats.idleConnections !== stats.connections) {
    problems.push(`not idle at the end: ${stats.busyChannels} busy channels, ${stats.waiting} waiting, ${stats.idleConnections}/${stats.connections} idle`);
  }
  if (report.openAfterClose !== 0) problems.push(`${report.openAfterClose} connections still open after close()`);
  if (Object.keys(report.handlesLeft).length > 0) problems.push(`handles left after close(): ${JSON.stringify(report.handlesLeft)}`);
  return problems;
}

/** Spawn the command on the lease and settle the lease: its stdout, or "refused" when the server refused the channel. */
async function runOnLease(lease: Lease, command: string): Promise<string> {
  const process = lease.connection.spawn({ command });
  process.stdin.end();
  const chunks: Buffer[] = [];
  process.stdout.on("data", (chunk: Buffer) => chunks.push(chunk));
  process.stderr.resume();
  try {
    await process.started;
  } catch (error) {
    // A refusal is checked by code and flag, never with instanceof: another copy of core may have made it.
    if (hasCode(error, "CHANNEL") && (error as ChannelError).refused && lease.refused) {
      lease.refused();
      return "refused";
    }
    lease.destroy(error);
    throw error;
  }
  let status: ExitStatus;
  try {
    status = await process.exit;
    await new Promise<void>((resolve) => (process.stdout.readableEnded ? resolve() : process.stdout.once("end", resolve)));
  } catch (error) {
    lease.destroy(error);
    throw error;
  }
  lease.release();
  if (status.exitCode !== 0) throw new Error(`exit status ${status.exitCode ?? status.signal}`);
  return Buffer.concat(chunks).toString("utf8");
}
