/**
 * The span sequences tunnel's executor and pool emit for each kind of operation (a command with sudo, a script, a
 * transfer, a retried and a failed command), replayed on any `Tracer` without a network. Tracer packages use them to
 * test their output; they are kept in step with `@tunnel-sh/core`'s executor and `@tunnel-sh/pool`, and open their
 * spans the same way, through core's `startSpan`, so a tracer sees exactly what it would see from a real run.
 * @example
 * import { traceScenarios } from "@tunnel-sh/testing";
 * traceScenarios.command({ tracer, advance: () => {} }, { cmd: "uptime" });
 */
import { ConnectError, Redactor, startSpan } from "@tunnel-sh/core";
import type { Span, Tracer } from "@tunnel-sh/core";

export interface Scenario {
  readonly tracer: Tracer;
  /** Moves the test clock forward. */
  readonly advance: (milliseconds: number) => void;
}

export const TARGET = { "server.address": "web-1", "server.port": 22, "tunnel.user": "deploy" } as const;
export const KEY = "deploy@web-1:22";

/** One pool acquire (with a fresh connect when `connect` is set), nested under `parent`. */
export function acquire(scenario: Scenario, parent: Span, options: { connect: boolean; fail?: unknown }): void {
  const { tracer, advance } = scenario;
  const span = startSpan(tracer, "tunnel.pool.acquire", {
    attributes: { "tunnel.connection.key": KEY, "tunnel.pool.queue_position": 0, "tunnel.transport": "ssh2" },
    parent,
  });
  if (options.connect) {
    const connect = startSpan(tracer, "tunnel.connect", {
      attributes: { ...TARGET, "tunnel.connection.key": KEY, "tunnel.transport": "ssh2" },
      parent: span,
    });
    advance(4);
    if (options.fail !== undefined) connect.recordError(options.fail);
    else connect.addEvent("tunnel.hop.ready", { "server.address": "web-1", "server.port": 22, "tunnel.hop.index": 0, "tunnel.hop.jump": false });
    connect.end();
  }
  advance(1);
  if (options.fail !== undefined) {
    span.addEvent("tunnel.pool.connect_failed");
    span.setAttributes({ "tunnel.pool.wait_time": 0.005, "tunnel.pool.connected": true });
    span.recordError(options.fail);
  } else {
    span.setAttributes({ "tunnel.pool.wait_time": options.connect ? 0.005 : 0, "tunnel.pool.connected": options.connect, "tunnel.pool.connection_id": 1 });
  }
  span.end();
}

/** `runCommand({ host: "web-1", user: "deploy", cmd, sudo: { password } })`, first try, exit 0. */
export function command(scenario: Scenario, options: { cmd: string; sudoPassword?: string; redactor?: Redactor }): void {
  const { tracer, advance } = scenario;
  const operation = (options.redactor ?? new Redactor()).child(options.sudoPassword ? [options.sudoPassword] : []);
  const span = startSpan(tracer, "tunnel.command", {
    attributes: {
      ...TARGET,
      "tunnel.connection.key": KEY,
      "tunnel.command.text": options.cmd,
      "tunnel.command.sudo": options.sudoPassword !== undefined,
      "tunnel.command.timeout": 30,
      "tunnel.command.working_dir": "/srv/app",
      "tunnel.command.env_count": 1,
    },
    redactor: operation,
  });
  acquire(scenario, span, { connect: true });
  advance(3);
  if (options.sudoPassword !== undefined) span.addEvent("tunnel.sudo.prompt_answered");
  advance(3);
  completed(span, { exitCode: 0, attempts: 1 });
}

/** `runScript({ content, interpreter: "/bin/bash", args: ["a", "b"] })` on a pooled connection, exit 0. */
export function script(scenario: Scenario): void {
  const { tracer, advance } = scenario;
  const span = startSpan(tracer, "tunnel.script", {
    attributes: {
      ...TARGET,
      "tunnel.connection.key": KEY,
      "tunnel.command.sudo": false,
      "tunnel.command.timeout": 60,
      "tunnel.command.env_count": 0,
      "tunnel.script.interpreter": "/bin/bash",
      "tunnel.script.args_count": 2,
      "tunnel.script.size": 2048,
    },
  });
  acquire(scenario, span, { connect: false });
  advance(20);
  completed(span, { exitCode: 0, attempts: 1 });
}

/** `transferFile({ direction: "upload", source, destination, verify: "sha256" })`: 3 MiB in 1.5 s. */
export function transfer(scenario: Scenario): void {
  const { tracer, advance } = scenario;
  const span = startSpan(tracer, "tunnel.transfer", {
    attributes: {
      ...TARGET,
      "tunnel.connection.key": KEY,
      "tunnel.transfer.local_path": "./dist/app.tar.gz",
      "tunnel.transfer.remote_path": "/srv/app/app.tar.gz",
      "tunnel.transfer.direction": "upload",
      "tunnel.transfer.verify": "sha256",
      "tunnel.transfer.recursive": false,
    },
  });
  acquire(scenario, span, { connect: false });
  advance(1499);
  span.setAttributes({
    "tunnel.transfer.bytes": 3 * 1024 * 1024,
    "tunnel.transfer.files": 1,
    "tunnel.transfer.skipped": 0,
    "tunnel.transfer.rate": 2 * 1024 * 1024,
    "tunnel.transfer.verified": true,
    "tunnel.attempts": 1,
  });
  span.end();
}

/** `runCommand({ cmd: "uptime" })`: the first connect is refused, the executor waits 200 ms, the second works. */
export function retriedCommand(scenario: Scenario): void {
  const { tracer, advance } = scenario;
  const span = startSpan(tracer, "tunnel.command", {
    attributes: {
      ...TARGET,
      "tunnel.connection.key": KEY,
      "tunnel.command.text": "uptime",
      "tunnel.command.sudo": false,
      "tunnel.command.timeout": 30,
      "tunnel.command.env_count": 0,
    },
  });
  const refused = new ConnectError("connect ECONNREFUSED 10.0.0.5:22", { target: { host: "web-1", port: 22, user: "deploy" } });
  acquire(scenario, span, { connect: true, fail: refused });
  span.addEvent("tunnel.retry", { "tunnel.attempt": 2, "tunnel.retry.delay": 0.2, "error.type": "CONNECT" });
  advance(200);
  acquire(scenario, span, { connect: true });
  advance(2);
  completed(span, { exitCode: 0, attempts: 2 });
}

/**
 * `runCommand({ cmd: "systemctl restart nginx" })` whose connect fails with `error`, a non-retryable error: the
 * operation fails. With `openBreaker`, the failure opens the host's circuit breaker, reported on a span of its own.
 */
export function failedCommand(scenario: Scenario, error: unknown, options: { sudoPassword?: string; redactor?: Redactor; openBreaker?: boolean } = {}): void {
  const { tracer } = scenario;
  const operation = (options.redactor ?? new Redactor()).child(options.sudoPassword ? [options.sudoPassword] : []);
  const span = startSpan(tracer, "tunnel.command", {
    attributes: {
      ...TARGET,
      "tunnel.connection.key": KEY,
      "tunnel.command.text": "systemctl restart nginx",
      "tunnel.command.sudo": options.sudoPassword !== undefined,
    },
    redactor: operation,
  });
  acquire(scenario, span, { connect: true, fail: error });
  if (options.openBreaker === true) {
    // The executor reports a breaker change on a short span of its own, not on the operation's.
    const breaker = startSpan(tracer, "tunnel.breaker", { attributes: { "tunnel.connection.key": KEY }, redactor: options.redactor });
    breaker.addEvent("tunnel.breaker.state", {
      "tunnel.breaker.state": "open",
      "tunnel.breaker.previous_state": "closed",
      "tunnel.breaker.failures": 1,
      "tunnel.connection.key": KEY,
    });
    breaker.end();
  }
  span.setAttributes({ "tunnel.attempts": 1 });
  span.recordError(error);
  span.end();
}

/** `runCommand({ cmd: "false" })`: the command ran and exited 1 (data, not an exception). */
export function nonZeroCommand(scenario: Scenario): void {
  const { tracer, advance } = scenario;
  const span = startSpan(tracer, "tunnel.command", { attributes: { ...TARGET, "tunnel.connection.key": KEY, "tunnel.command.text": "false" } });
  acquire(scenario, span, { connect: false });
  advance(2);
  completed(span, { exitCode: 1, attempts: 1 });
}

/** The end of a command that ran: its exit code as an event and on the span, the attempts, untruncated output. */
function completed(span: Span, outcome: { readonly exitCode: number; readonly attempts: number }): void {
  span.addEvent("tunnel.command.completed", { "process.exit.code": outcome.exitCode });
  span.setAttributes({
    "process.exit.code": outcome.exitCode,
    "tunnel.attempts": outcome.attempts,
    "tunnel.output.truncated": false,
  });
  span.end();
}
