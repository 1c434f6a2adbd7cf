import { describe, expect, it } from "vitest";
import { DefaultExecutorConfig } from "../src/config.js";
import { AbortError, CircuitOpenError, ConnectError, OutcomeUnknownError, TunnelError, ValidationError } from "../src/errors.js";
import { Executor } from "../src/executor.js";
import { Fleet } from "../src/fleet.js";
import type { FleetEvent, FleetHost, FleetRunner } from "../src/fleet-types.js";
import type { Command, Result, Script, Transfer, TransferResult } from "../src/types.js";
import { fakePool } from "./support/fake-pool.js";

/** What a scripted host does: exit with a code after a delay, or fail with an error. Until then, it honours the signal. */
interface HostScript {
  readonly exitCode?: number;
  readonly error?: unknown;
  readonly delayMs?: number;
  readonly output?: string;
  /** Wait until the request's signal aborts (a command that would run for ever). */
  readonly hang?: boolean;
}

/** A FleetRunner whose hosts behave as scripted by host name; it records what ran and what was cancelled. */
class ScriptedRunner implements FleetRunner {
  readonly started: string[] = [];
  readonly cancelled: string[] = [];
  readonly requests: Array<Command | Script | Transfer> = [];
  running = 0;
  maxRunning = 0;

  constructor(readonly scripts: Readonly<Record<string, HostScript>> = {}) {}

  async runCommand(command: Command): Promise<Result> {
    return this.#run(command, command.onStdout);
  }

  async runScript(script: Script): Promise<Result> {
    return this.#run(script, script.onStdout);
  }

  async transferFile(transfer: Transfer): Promise<TransferResult> {
    this.requests.push(transfer);
    this.started.push(transfer.host);
    transfer.onProgress?.({ bytes: 5, total: 10, rate: 1 });
    transfer.onProgress?.({ bytes: 10, total: 10, rate: 1 });
    return { bytes: 10, files: 1, durationMs: 1, attempts: 1, host: transfer.host, verified: false, skipped: 0 };
  }

  async #run(request: Command | Script, onStdout: ((text: string) => void) | undefined): Promise<Result> {
    this.requests.push(request);
    this.started.push(request.host);
    this.running += 1;
    this.maxRunning = Math.max(this.maxRunning, this.running);
    const script = this.scripts[request.host] ?? {};
    try {
      if (script.output !== undefined) onStdout?.(script.output);
      await new Promise<void>((resolve, reject) => {
        const signal = request.signal;
        const onAbort = () => {
          this.cancelled.push(request.host);
          reject(new AbortError(undefined, { target: request }));
        };
        if (signal?.aborted) return onAbort();
        signal?.addEventListener("abort", onAbort, { once: true });
        if (!script.hang)
          setTimeout(() => {
            signal?.removeEventListener("abort", onAbort);
            resolve();
          }, script.delayMs ?? 1);
      });
      if (script.error !== undefined) throw script.error;
      return {
        exitCode: script.exitCode ?? 0,
        signal: null,
        stdout: script.output ?? "",
        stderr: "",
        durationMs: 1,
        attempts: 1,
        host: request.host,
        truncated: false,
      };
    } finally {
      this.running -= 1;
    }
  }
}

const hostsNamed = (count: number, prefix = "h"): FleetHost[] => Array.from({ length: count }, (_, index) => ({ host: `${prefix}${index + 1}` }));
const command = { type: "command", cmd: "uptime" } as const;

describe("Fleet", () => {
  it("runs the operation on every host, never more at once than the concurrency, and reports in host order", async () => {
    const runner = new ScriptedRunner({ h2: { exitCode: 3, delayMs: 5 } });
    const report = await new Fleet(runner).run({ hosts: hostsNamed(10), operation: command, concurrency: 3 });
    expect(runner.started.sort()).toEqual(
      hostsNamed(10)
        .map((host) => host.host)
        .sort(),
    );
    expect(runner.maxRunning).toBe(3);
    expect(report.hosts.map((host) => host.name)).toEqual(hostsNamed(10).map((host) => `@${host.host}:`));
    expect(report).toMatchObject({ ok: 9, failed: 1, skipped: 0, cancelled: 0, budgetSpent: false, aborted: false, batches: [10] });
    expect(report.hosts[1]).toMatchObject({ status: "failed", result: { exitCode: 3 } });
    expect(report.hosts[0]).toMatchObject({ status: "ok", result: { exitCode: 0 }, batch: 0, index: 0 });
  });

  it("runs rolling batches one after another: a canary, then 10%, then the rest", async () => {
    const runner = new ScriptedRunner();
    const events: FleetEvent[] = [];
    const report = await new Fleet(runner).run({
      hosts: hostsNamed(25),
      operation: command,
      concurrency: 100,
      serial: [1, "10%", "100%"],
      onEvent: (event) => events.push(event),
    });
    expect(report.batches).toEqual([1, 3, 21]);
    expect(report.hosts.map((host) => host.batch)).toEqual([0, 1, 1, 1, ...Array<number>(21).fill(2)]);
    // Each batch's hosts all finish before the next batch starts.
    const order = events
      .filter((event) => event.type === "batch" || event.type === "done")
      .map((event) => (event.type === "batch" ? `batch${event.batch}` : event.result.batch));
    expect(order).toEqual(["batch0", 0, "batch1", 1, 1, 1, "batch2", ...Array<number>(21).fill(2)]);
    expect(runner.maxRunning).toBe(21);
  });

  it("repeats the last batch size until every host had its turn", async () => {
    const report = await new Fleet(new ScriptedRunner()).run({ hosts: hostsNamed(7), operation: command, serial: 2 });
    expect(report.batches).toEqual([2, 2, 2, 1]);
  });

  it("stops starting hosts once failures exceed the budget", async () => {
    const runner = new ScriptedRunner({ h1: { exitCode: 1 }, h3: { exitCode: 1 } });
    const report = await new Fleet(runner).run({ hosts: hostsNamed(10), operation: command, concurrency: 1, maxFailures: 1 });
    expect(report.budgetSpent).toBe(true);
    expect(runner.started).toEqual(["h1", "h2", "h3"]);
    expect(report.hosts[1]).toMatchObject({ status: "ok" });
    expect(report).toMatchObject({ ok: 1, failed: 2, skipped: 7, cancelled: 0 });
    expect(report.hosts.slice(3).every((host) => host.status === "skipped" && host.skipReason === "budget")).toBe(true);
  });

  it("takes a percentage budget of all hosts, rounded down, and skips later batches once it is spent", async () => {
    const runner = new ScriptedRunner({ h1: { exitCode: 1 }, h2: { exitCode: 1 }, h3: { exitCode: 1 } });
    const events: FleetEvent[] = [];
    const report = await new Fleet(runner).run({
      hosts: hostsNamed(20),
      operation: command,
      concurrency: 1,
      serial: 5,
      maxFailures: "10%",
      onEvent: (event) => events.push(event),
    });
    // 10% of 20 = 2 failures tolerated; the third spends the budget in the first batch.
    expect(runner.started).toEqual(["h1", "h2", "h3"]);
    expect(report).toMatchObject({ failed: 3, ok: 0, skipped: 17, budgetSpent: true });
    expect(events.filter((event) => event.type === "batch")).toHaveLength(1);
    expect(events.find((event) => event.type === "budget-spent")).toEqual({ type: "budget-spent", failures: 3, budget: 2 });
  });

  it("cancels running hosts when the budget is spent and onBudgetSpent is cancel", async () => {
    const runner = new ScriptedRunner({ h1: { exitCode: 1, delayMs: 20 }, h2: { hang: true }, h3: { hang: true } });
    const report = await new Fleet(runner).run({ hosts: hostsNamed(6), operation: command, concurrency: 3, failFast: true, onBudgetSpent: "cancel" });
    expect(runner.cancelled.sort()).toEqual(["h2", "h3"]);
    expect(report).toMatchObject({ failed: 1, cancelled: 2, skipped: 3, budgetSpent: true, aborted: false });
    expect(report.hosts[1]?.error?.code).toBe("ABORTED");
  });

  it("fail-fast lets running hosts finish by default", async () => {
    const runner = new ScriptedRunner({ h1: { error: new ConnectError("refused", { target: { host: "h1" } }) }, h2: { delayMs: 20 } });
    const report = await new Fleet(runner).run({ hosts: hostsNamed(5), operation: command, concurrency: 2, failFast: true });
    expect(report.hosts[0]).toMatchObject({ status: "failed" });
    expect(TunnelError.is(report.hosts[0]?.error) && report.hosts[0]?.error.code).toBe("CONNECT");
    expect(report.hosts[1]).toMatchObject({ status: "ok" });
    expect(report).toMatchObject({ ok: 1, failed: 1, skipped: 3 });
  });

  it("one AbortSignal cancels the whole fleet: running hosts cancelled, the rest skipped", async () => {
    const runner = new ScriptedRunner({ h1: { hang: true }, h2: { hang: true } });
    const controller = new AbortController();
    const run = new Fleet(runner).run({ hosts: hostsNamed(5), operation: command, concurrency: 2, signal: controller.signal });
    for await (const event of run) if (event.type === "started" && event.host === "@h2:") controller.abort();
    const report = await run;
    expect(runner.cancelled.sort()).toEqual(["h1", "h2"]);
    expect(report).toMatchObject({ aborted: true, cancelled: 2, skipped: 3, ok: 0, failed: 0 });
    expect(report.hosts[4]).toMatchObject({ status: "skipped", skipReason: "aborted" });
  });

  it("streams started, output, progress and done events through the async iterator and the callback alike", async () => {
    const runner = new ScriptedRunner({ a: { output: "hello\n" } });
    const seen: FleetEvent[] = [];
    const run = new Fleet(runner).run({ hosts: [{ host: "a", name: "web-a" }], operation: command, onEvent: (event) => seen.push(event) });
    const iterated: FleetEvent[] = [];
    for await (const event of run) iterated.push(event);
    expect(iterated).toEqual(seen);
    expect(iterated.map((event) => event.type)).toEqual(["batch", "started", "output", "done"]);
    expect(iterated[2]).toEqual({ type: "output", host: "web-a", stream: "stdout", text: "hello\n" });

    const transfers = new Fleet(runner).run({
      hosts: [{ host: "b" }],
      operation: { type: "transfer", direction: "upload", source: "/etc/hostname", destination: "/tmp/x" },
    });
    const progress: number[] = [];
    for await (const event of transfers) if (event.type === "progress") progress.push(event.progress.bytes);
    expect(progress).toEqual([5, 10]);
    expect((await transfers).hosts[0]).toMatchObject({ status: "ok", transfer: { bytes: 10 } });
  });

  it("gives each host its own operation from a function", async () => {
    const runner = new ScriptedRunner();
    await new Fleet(runner).run({ hosts: hostsNamed(3), operation: (host) => ({ type: "command", cmd: "echo", env: { WHO: host.host } }) });
    expect(runner.requests.map((request) => (request as Command).env?.WHO).sort()).toEqual(["h1", "h2", "h3"]);
    expect(runner.requests.every((request) => !("type" in request))).toBe(true);
  });

  it("rejects bad options and any host's invalid operation before running anything", () => {
    const runner = new ScriptedRunner();
    const fleet = new Fleet(runner);
    const bad = (options: object, field: string) => {
      const error = (() => {
        try {
          fleet.run({ hosts: hostsNamed(3), operation: command, ...options });
        } catch (caught) {
          return caught;
        }
        return undefined;
      })();
      expect(error).toBeInstanceOf(ValidationError);
      expect((error as ValidationError).field).toBe(field);
    };
    bad({ concurrency: 0 }, "concurrency");
    bad({ concurrency: 1.5 }, "concurrency");
    bad({ serial: [] }, "serial");
    bad({ serial: [0] }, "serial[0]");
    bad({ serial: [1, "0%"] }, "serial[1]");
    bad({ serial: ["150%"] }, "serial[0]");
    bad({ maxFailures: -1 }, "maxFailures");
    bad({ maxFailures: "ten" }, "maxFailures");
    bad({ onBudgetSpent: "explode" }, "onBudgetSpent");
    bad({ hosts: [{ host: "a" }, { host: "a" }] }, "hosts[1].name");
    bad({ hosts: [{ host: "a" }, { host: "b", port: 0 }] }, "hosts[1].port");
    bad({ operation: { type: "command", cmd: "" } }, "operation.cmd");
    bad({ operation: { type: "reboot" } }, "operation.type");
    bad({ operation: (host: FleetHost) => ({ type: "command", cmd: "true", env: host.host === "h3" ? { "BAD-NAME": "x" } : {} }) }, "operation.env");
    expect(() => fleet.run({ hosts: hostsNamed(3), operation: command, maxFailure: 1 } as never)).toThrow(/maxFailure/);
    expect(runner.started).toEqual([]);
  });

  it("wraps what a runner rejects with, when it is not a TunnelError, in OutcomeUnknownError", async () => {
    const report = await new Fleet(new ScriptedRunner({ a: { error: new Error("runner bug") } })).run({ hosts: [{ host: "a" }], operation: command });
    expect(report.hosts[0]?.status).toBe("failed");
    expect(report.hosts[0]?.error).toBeInstanceOf(OutcomeUnknownError);
    expect(report.hosts[0]?.error?.message).toContain("runner bug");
  });

  it("asks the runner's own validate() about every host's request before running anything", () => {
    const runner = new ScriptedRunner();
    const checked: string[] = [];
    const picky = Object.assign(runner, {
      validate: (type: string, request: Command | Script | Transfer) => {
        checked.push(`${type} ${request.host}`);
        if (request.host === "h2") throw new ValidationError("cmd", "this runner refuses it", { target: request });
      },
    });
    expect(() => new Fleet(picky).run({ hosts: hostsNamed(3), operation: command })).toThrow(/operation\.cmd: this runner refuses it/);
    expect(checked).toEqual(["command h1", "command h2"]);
    expect(runner.started).toEqual([]);
  });

  it("gives an empty report for no hosts", async () => {
    expect(await new Fleet(new ScriptedRunner()).run({ hosts: [], operation: command })).toMatchObject({ hosts: [], ok: 0, batches: [] });
  });
});

describe("Fleet over the Executor", () => {
  it("runs real processes per host and a fleet abort stops every one of them", async () => {
    const pool = fakePool();
    const executor = new Executor(pool, DefaultExecutorConfig());
    const controller = new AbortController();
    const run = new Fleet(executor).run({
      hosts: hostsNamed(3),
      operation: { type: "command", cmd: "echo started; sleep 30" },
      signal: controller.signal,
    });
    let outputs = 0;
    for await (const event of run) if (event.type === "output" && ++outputs === 3) controller.abort();
    const report = await run;
    expect(report).toMatchObject({ aborted: true, cancelled: 3 });
    expect(report.hosts.every((host) => host.error?.code === "ABORTED")).toBe(true);
  });

  it("counts a host whose breaker is open as failed with CircuitOpenError", async () => {
    const pool = fakePool();
    const config = DefaultExecutorConfig().with({ maxRetries: 0, breaker: { failureThreshold: 1, cooldown: 60_000 } });
    const executor = new Executor(pool, config);
    pool.failNext.push(new ConnectError("refused", { target: { host: "h1" } }));
    const first = await new Fleet(executor).run({ hosts: [{ host: "h1" }], operation: command });
    expect(first.hosts[0]?.error?.code).toBe("CONNECT");
    const second = await new Fleet(executor).run({ hosts: [{ host: "h1" }, { host: "h2" }], operation: { type: "command", cmd: "true" } });
    expect(second.hosts[0]?.status).toBe("failed");
    expect(second.hosts[0]?.error).toBeInstanceOf(CircuitOpenError);
    expect(second.hosts[1]).toMatchObject({ status: "ok", result: { exitCode: 0 } });
    expect(second.failed).toBe(1);
  });
});
