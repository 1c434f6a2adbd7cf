/**
 * A tracer written from core's tracer contract alone — it imports nothing from tunnel but types, does no
 * redaction and unwraps nothing — run through commands, scripts and transfers with sudo passwords against a real
 * sshd over both transports: its spans nest operation → pool acquire → connect, every parent it is handed is a
 * span it returned, and no secret reaches any attribute, event or recorded error.
 */
import { rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Attributes, Span, SpanOptions, Tracer } from "@tunnel-sh/core";
import { startSshd } from "@tunnel-sh/testing";
import type { Sshd } from "@tunnel-sh/testing";
import { makeStack, testExecutorConfig, TRANSPORTS } from "./support/transports.js";
import type { Stack } from "./support/transports.js";

interface PlainSpan {
  readonly id: number;
  readonly name: string;
  readonly parentId: number | undefined;
  readonly attributes: Record<string, unknown>;
  readonly events: { readonly name: string; readonly attributes: Record<string, unknown> }[];
  readonly errors: { readonly name: string; readonly message: string; readonly stack: string; readonly fields: Record<string, unknown> }[];
  ended: boolean;
}

/** What someone would write after reading tracer.ts: spans kept by the object handed out, nothing else. */
class PlainTracer implements Tracer {
  readonly spans: PlainSpan[] = [];
  /** Parents passed in that this tracer never returned (the contract says there are none). */
  unknownParents = 0;
  readonly #byHandle = new WeakMap<Span, PlainSpan>();

  startSpan(name: string, options?: SpanOptions): Span {
    let parentId: number | undefined;
    if (options?.parent !== undefined) {
      const parent = this.#byHandle.get(options.parent);
      if (parent === undefined) this.unknownParents += 1;
      parentId = parent?.id;
    }
    const record: PlainSpan = { id: this.spans.length, name, parentId, attributes: { ...options?.attributes }, events: [], errors: [], ended: false };
    this.spans.push(record);
    const handle: Span = {
      setAttributes: (attributes: Attributes) => void Object.assign(record.attributes, attributes),
      addEvent: (event: string, attributes?: Attributes) => void record.events.push({ name: event, attributes: { ...attributes } }),
      recordError: (error: unknown) => {
        const value = error as { name?: unknown; message?: unknown; stack?: unknown; cause?: unknown };
        const fields: Record<string, unknown> = {};
        if (typeof error === "object" && error !== null) for (const [key, field] of Object.entries(error)) fields[key] = field;
        const cause = value.cause as { message?: unknown } | undefined;
        if (cause !== undefined) fields["cause.message"] = String(cause?.message ?? cause);
        record.errors.push({ name: String(value.name), message: String(value.message ?? error), stack: String(value.stack), fields });
      },
      end: () => {
        record.ended = true;
      },
    };
    this.#byHandle.set(handle, record);
    return handle;
  }
}

describe.each(TRANSPORTS)("a tracer written from the contract alone, over %s", (name) => {
  let sshd: Sshd;
  let stack: Stack;
  const tracer = new PlainTracer();
  const outcomes: unknown[] = [];
  let sudoPassword = "";
  const wrongSudo = `wrong-sudo-${name}-4h8s1z`;

  beforeAll(async () => {
    sshd = await startSshd({ usePam: false });
    sudoPassword = sshd.users.pwsudo.password;
    stack = makeStack(name, sshd, { tracer, executor: testExecutorConfig().with({ sudoTimeout: 5_000 }) });
    const pwsudo = { host: sshd.host, port: sshd.port, user: sshd.users.pwsudo.name };
    const local = join(sshd.dir, `third-party-${name}.txt`);
    const remote = `/tmp/tunnel-third-party-${name}-${process.pid}.txt`;
    await writeFile(local, "payload\n");
    const settle = async (operation: Promise<unknown>) => outcomes.push(await operation.catch((error: unknown) => error));
    // The password is on the command line too, so the command text attribute holds it unless core redacts it.
    await settle(stack.executor.runCommand({ ...pwsudo, cmd: `test -n '${sudoPassword}' && id -u`, sudo: { password: sudoPassword } }));
    await settle(stack.executor.runScript({ ...pwsudo, content: "#!/bin/sh\nid -un", sudo: { password: sudoPassword, user: sshd.users.other.name } }));
    await settle(
      stack.executor.transferFile({
        ...pwsudo,
        direction: "upload",
        source: local,
        destination: remote,
        owner: sshd.users.other.name,
        sudo: { password: sudoPassword },
      }),
    );
    await settle(stack.executor.runCommand({ ...pwsudo, cmd: `echo '${wrongSudo}'`, sudo: { password: wrongSudo } }));
    await rm(remote, { force: true });
  }, 120_000);

  afterAll(async () => {
    await stack?.close();
    await sshd?.stop();
  });

  it("ran every operation through sudo as asked", () => {
    expect(outcomes[0]).toMatchObject({ exitCode: 0, stdout: "0\n" });
    expect(outcomes[1]).toMatchObject({ exitCode: 0, stdout: `${sshd.users.other.name}\n` });
    expect(outcomes[2]).toMatchObject({ files: 1 });
    expect(outcomes[3]).toMatchObject({ code: "SUDO", reason: "wrong-password" });
  });

  it("nests every span under a span it returned: operation, then pool acquire, then connect", () => {
    expect(tracer.unknownParents).toBe(0);
    const byId = new Map(tracer.spans.map((span) => [span.id, span]));
    const operations = tracer.spans.filter((span) => ["tunnel.command", "tunnel.script", "tunnel.transfer"].includes(span.name));
    expect(operations.map((span) => span.name)).toEqual(["tunnel.command", "tunnel.script", "tunnel.transfer", "tunnel.command"]);
    for (const operation of operations) {
      expect(operation.parentId).toBeUndefined();
      const acquires = tracer.spans.filter((span) => span.parentId === operation.id && span.name === "tunnel.pool.acquire");
      expect(acquires.length, `${operation.name} has an acquire under it`).toBeGreaterThan(0);
    }
    for (const span of tracer.spans.filter((candidate) => candidate.name === "tunnel.pool.acquire")) {
      expect(byId.get(span.parentId ?? -1)?.name).toMatch(/^tunnel\.(command|script|transfer)$/);
    }
    const connects = tracer.spans.filter((span) => span.name === "tunnel.connect");
    expect(connects.length).toBeGreaterThan(0);
    for (const connect of connects) expect(byId.get(connect.parentId ?? -1)?.name).toBe("tunnel.pool.acquire");
    expect(tracer.spans.every((span) => span.ended)).toBe(true);
  });

  it("never receives a secret in any attribute, event or recorded error", () => {
    const command = tracer.spans.find((span) => span.name === "tunnel.command");
    // The value did reach the tracer, redacted: the check below is not passing for want of data.
    expect(command?.attributes["tunnel.command.text"]).toBe("test -n '[REDACTED]' && id -u");
    const failed = tracer.spans.filter((span) => span.name === "tunnel.command")[1];
    expect(failed?.errors.map((error) => error.fields["code"])).toEqual(["SUDO"]);
    expect(tracer.spans.some((span) => span.events.some((event) => event.name === "tunnel.sudo.prompt_answered"))).toBe(true);
    const everything = JSON.stringify(tracer.spans);
    expect(everything.includes(sudoPassword)).toBe(false);
    expect(everything.includes(wrongSudo)).toBe(false);
  });
});
