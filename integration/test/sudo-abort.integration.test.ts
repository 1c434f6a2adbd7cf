/**
 * An abort or a timeout during sudo's prompt phase: the command must never run unless it had started before the stop,
 * the password is not sent once the caller gave up, and every process of the run (sudo'd or not) is gone within 2 s.
 *
 * The side effect is a `touch` of a marker file. "Started" is the moment the executor let the command through sudo's
 * gate (its `tunnel.sudo.released` span event): a marker may exist only when that came before the stop.
 */
import { rm, stat } from "node:fs/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AbortError, TimeoutError } from "@tunnel-sh/core";
import type { Attributes, Span, SudoOptions, Tracer } from "@tunnel-sh/core";
import { remoteProcesses, startSshd } from "@tunnel-sh/testing";
import type { Sshd } from "@tunnel-sh/testing";
import { makeStack, TRANSPORTS } from "./support/transports.js";
import type { Stack } from "./support/transports.js";
import { eventually } from "./support/fault-processes.js";

const TRIALS = 12;

/** Live processes of root and `user` (zombies left out) whose command line holds `needle`. */
async function processesWith(user: string, needle: string): Promise<string[]> {
  const entries = [...(await remoteProcesses("root")), ...(await remoteProcesses(user))];
  return entries.filter((entry) => entry.args.includes(needle)).map((entry) => `${entry.pid} ${entry.args}`);
}

/** Notes the clock time of every `tunnel.sudo.released` event. */
class ReleaseClock implements Tracer {
  readonly released: number[] = [];
  startSpan(): Span {
    return {
      setAttributes: (_attributes: Attributes) => {},
      addEvent: (name: string) => {
        if (name === "tunnel.sudo.released") this.released.push(Date.now());
      },
      recordError: () => {},
      end: () => {},
    };
  }
}

describe.each(TRANSPORTS)("sudo cancelled during the prompt phase over %s", (transportName) => {
  let sshd: Sshd;
  let stack: Stack;
  const clock = new ReleaseClock();

  beforeAll(async () => {
    sshd = await startSshd();
    stack = makeStack(transportName, sshd, { tracer: clock });
  });
  afterAll(async () => {
    await stack?.close();
    await sshd?.stop();
  });

  const cells: ReadonlyArray<{ name: string; user: () => string; sudo: () => true | SudoOptions }> = [
    { name: "sudo: true", user: () => sshd.users.sudo.name, sudo: () => true },
    { name: "sudo: { password }", user: () => sshd.users.pwsudo.name, sudo: () => ({ password: sshd.users.pwsudo.password }) },
  ];

  it("the gate line is neither echoed on a pty nor seen by the command's stdin", async () => {
    const target = { host: sshd.host, port: sshd.port, user: sshd.users.sudo.name };
    const pty = await stack.executor.runCommand({ ...target, cmd: "id -u", sudo: true, pty: true });
    expect(pty.stdout.replace(/\r/g, "")).toBe("0\n");
    const piped = await stack.executor.runCommand({ ...target, cmd: "cat", sudo: true, stdin: "only this" });
    expect(piped).toMatchObject({ exitCode: 0, stdout: "only this", stderr: "" });
  });

  it.each(cells)("$name: never runs after the stop, and leaves no process behind", async (cell) => {
    const target = { host: sshd.host, port: sshd.port, user: cell.user() };
    // How long a whole sudo run takes on a warm connection: the stop moments are spread over it (and a bit past it).
    await stack.executor.runCommand({ ...target, cmd: "true", sudo: cell.sudo() });
    const before = performance.now();
    await stack.executor.runCommand({ ...target, cmd: "true", sudo: cell.sudo() });
    const phase = Math.max(20, performance.now() - before);
    const outcomes: string[] = [];
    for (let trial = 0; trial < TRIALS; trial++) {
      const tag = `tunnel-sudo-abort-${transportName}-${process.pid}-${trial}-${Date.now()}`;
      const marker = `/tmp/${tag}`;
      await rm(marker, { force: true });
      const delay = Math.round((phase * 1.3 * trial) / (TRIALS - 1));
      const byTimeout = trial % 2 === 1;
      const controller = new AbortController();
      clock.released.length = 0;
      let stoppedAt = Number.POSITIVE_INFINITY;
      const running = stack.executor.runCommand({
        ...target,
        // `exec -a` is not POSIX; a second word naming the run keeps the sleep findable by its tag.
        cmd: `touch ${marker}; sh -c 'sleep 30' ${tag}`,
        sudo: cell.sudo(),
        ...(byTimeout ? { timeout: Math.max(1, delay) } : { signal: controller.signal }),
      });
      // For a timeout this timer is due with the executor's own and fires after it: a moment at or after the stop.
      setTimeout(
        () => {
          stoppedAt = Date.now();
          if (!byTimeout) controller.abort();
        },
        byTimeout ? Math.max(1, delay) : delay,
      );
      const error = await running.catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(byTimeout ? TimeoutError : AbortError);
      const gone = await eventually(async () => (await processesWith(target.user, tag)).length === 0, 2_000);
      expect(gone ? [] : await processesWith(target.user, tag)).toEqual([]);
      const touched = await stat(marker).catch(() => undefined);
      const releasedAt = clock.released[0];
      expect(clock.released.length).toBeLessThanOrEqual(1);
      if (touched) {
        outcomes.push("started before the stop");
        expect(releasedAt).toBeDefined();
        expect(releasedAt).toBeLessThanOrEqual(stoppedAt);
      } else {
        outcomes.push("never ran");
        // Let through after the stop would be the bug itself (even when the kill won the race with the touch).
        if (releasedAt !== undefined) expect(releasedAt).toBeLessThanOrEqual(stoppedAt);
      }
      await rm(marker, { force: true });
    }
    // The spread reached into the prompt phase: some trials stopped the command before it ran.
    expect(outcomes).toContain("never ran");
    expect((await stack.executor.runCommand({ ...target, cmd: "echo usable", sudo: cell.sudo() })).stdout).toBe("usable\n");
  });
});
