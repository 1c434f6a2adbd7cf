import { readFile } from "node:fs/promises";
import { PassThrough, Readable, Writable } from "node:stream";
import type { FakeConnection } from "@tunnel-sh/testing";
import { beforeAll, describe, expect, it } from "vitest";
import { AbortError, SudoError, TimeoutError, TunnelError, UnsupportedHostError } from "../src/errors.js";
import { prepareCommand, startLine } from "../src/prepare.js";
import { runProcess } from "../src/run.js";
import { TokenFilter } from "../src/token-filter.js";
import type { Connection, RemoteProcess, SpawnRequest } from "../src/transport.js";
import { localTransport } from "./support/fake-pool.js";

const transport = localTransport();
let connection: FakeConnection;
beforeAll(async () => {
  connection = await transport.connect({ host: "localhost" });
});

/** Is a local process still alive (not a zombie)? */
async function alive(pid: number): Promise<boolean> {
  try {
    return !/^\d+ \(.*\) Z/.test(await readFile(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return false;
  }
}

/** Resolves to true once `pid` has exited, or false after `ms` (a hang guard, far above how long an exit takes). */
async function exits(pid: number, ms = 20_000): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (await alive(pid)) {
    if (Date.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return true;
}

describe("runProcess", () => {
  it("strips the start token from the output and requires it", async () => {
    const start = "[tunnel-start-0123abcd]";
    const result = await runProcess(connection, { command: `printf '%s' '${start}' >&2; echo out; echo err >&2`, start });
    expect(result).toMatchObject({ exitCode: 0, stdout: "out\n", stderr: "err\n" });
    const split = await runProcess(connection, { command: `printf '[tunnel-sta' >&2; sleep 0.05; printf 'rt-0123abcd]x' >&2`, start });
    expect(split.stderr).toBe("x");
  });

  it("fails with UnsupportedHostError, keeping the host's line, when the command never started", async () => {
    const failure = await runProcess(connection, {
      command: "echo 'This account is currently not available.'; exit 1",
      start: "[tunnel-start-0123abcd]",
    }).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(UnsupportedHostError);
    expect(failure).toMatchObject({ code: "UNSUPPORTED_HOST", reason: "shell", retryable: false, detail: "This account is currently not available." });
    expect((failure as Error).message).toMatch(/did not run the command \(it exited with code 1\): This account is currently not available\.$/);
  });

  it("sends later prepared commands on a connection without the start line once its login shell ran one", async () => {
    const proven = await localTransport().connect({ host: "localhost" });
    const commands: string[] = [];
    const spawn = proven.spawn.bind(proven);
    (proven as { spawn: Connection["spawn"] }).spawn = (request: SpawnRequest) => {
      commands.push(request.command);
      return spawn(request);
    };
    const first = prepareCommand({ cmd: "echo one" });
    const second = prepareCommand({ cmd: "echo two >&2" });
    expect(await runProcess(proven, { command: first.command, start: first.start })).toMatchObject({ stdout: "one\n", stderr: "" });
    expect(await runProcess(proven, { command: second.command, start: second.start })).toMatchObject({ stdout: "", stderr: "two\n" });
    expect(commands).toEqual([first.command, "echo two >&2"]);
    // A command that does not begin with the start line is still held to its token.
    const unprefixed = await runProcess(proven, { command: "exit 1", start: second.start }).catch((error: unknown) => error);
    expect(unprefixed).toBeInstanceOf(UnsupportedHostError);
    // A connection whose login shell has run nothing yet is held to the token.
    const fresh = await localTransport().connect({ host: "localhost" });
    const silent = await runProcess(fresh, { command: second.command.slice(startLine(second.start).length), start: second.start }).catch(
      (error: unknown) => error,
    );
    expect(silent).toBeInstanceOf(UnsupportedHostError);
  });

  it("collects stdout and stderr apart, with the exit code", async () => {
    const result = await runProcess(connection, { command: "echo out; echo err >&2; exit 3" });
    expect(result).toMatchObject({ exitCode: 3, signal: null, stdout: "out\n", stderr: "err\n", truncated: false });
    expect(result.durationMs).toBeGreaterThan(0);
  });

  it("reports death by signal with a null exit code", async () => {
    const result = await runProcess(connection, { command: "kill -TERM $$" });
    expect(result).toMatchObject({ exitCode: null, signal: "SIGTERM" });
  });

  it("decodes a multi-byte character split across chunks", async () => {
    const chunks: string[] = [];
    const result = await runProcess(connection, {
      command: "printf '\\342'; sleep 0.05; printf '\\202\\254 ok'",
      onStdout: (text) => chunks.push(text),
    });
    expect(result.stdout).toBe("€ ok");
    expect(chunks.join("")).toBe("€ ok");
    expect(chunks.join("")).not.toContain("\uFFFD");
  });

  it("caps collected output and sets truncated, while callbacks see everything", async () => {
    let seen = 0;
    const result = await runProcess(connection, {
      command: "head -c 300000 /dev/zero | tr '\\0' a",
      maxOutputBytes: 1000,
      onStdout: (text) => (seen += text.length),
    });
    expect(result.stdout).toBe("a".repeat(1000));
    expect(result.truncated).toBe(true);
    expect(seen).toBe(300000);
  });

  it("drops a character cut by the cap instead of emitting a replacement character", async () => {
    const result = await runProcess(connection, { command: "printf 'a€b'", maxOutputBytes: 2 });
    expect(result.stdout).toBe("a");
    expect(result.truncated).toBe(true);
  });

  it("feeds stdin from a string, bytes and a stream", async () => {
    expect((await runProcess(connection, { command: "cat", stdin: "text in" })).stdout).toBe("text in");
    expect((await runProcess(connection, { command: "wc -c", stdin: new Uint8Array(70000) })).stdout.trim()).toBe("70000");
    const stream = Readable.from([Buffer.from("one "), Buffer.from("two")]);
    expect((await runProcess(connection, { command: "cat", stdin: stream })).stdout).toBe("one two");
  });

  it("closes stdin at once when none is given", async () => {
    const result = await runProcess(connection, { command: "cat; echo done" });
    expect(result.stdout).toBe("done\n");
  });

  it("stops the process group on timeout and rejects with TimeoutError", async () => {
    const pids: string[] = [];
    const error = await runProcess(connection, {
      command: "sleep 30 & echo $!; wait",
      timeoutMs: 300,
      onStdout: (text) => pids.push(text.trim()),
    }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(TimeoutError);
    expect(TunnelError.is(error) && error.code).toBe("TIMEOUT");
    expect(await exits(Number(pids[0]))).toBe(true);
  });

  it("rejects with AbortError when the caller aborts, and at once when already aborted", async () => {
    const controller = new AbortController();
    const running = runProcess(connection, { command: "sleep 30", signal: controller.signal });
    setTimeout(() => controller.abort(), 100);
    await expect(running).rejects.toBeInstanceOf(AbortError);
    const before = transport.callsOf("spawn").length;
    await expect(runProcess(connection, { command: "true", signal: controller.signal })).rejects.toBeInstanceOf(AbortError);
    expect(transport.callsOf("spawn").length).toBe(before);
  });

  it("reports when the command started", async () => {
    let started = false;
    await runProcess(connection, { command: "true", onStarted: () => (started = true) });
    expect(started).toBe(true);
  });
});

// A stand-in for `sudo -S -p PROMPT`: prompts on stderr (no newline), reads one line, checks it.
const fakeSudo = (password: string, then: string) =>
  `n=0; while :; do printf '[tunnel-sudo-N1]' >&2; IFS= read -r pw || { echo 'sudo: no password was provided' >&2; exit 1; }; ` +
  `if [ "$pw" = '${password}' ]; then break; fi; n=$((n+1)); echo 'Sorry, try again.' >&2; ` +
  `if [ $n -ge 3 ]; then echo 'sudo: 3 incorrect password attempts' >&2; exit 1; fi; done; printf '[tunnel-ready-R1]' >&2; ${then}`;

describe("runProcess with sudo", () => {
  const exchange = { prompt: "[tunnel-sudo-N1]", ready: "[tunnel-ready-R1]" };

  it("answers the prompt once, strips prompt and ready tokens, then sends stdin", async () => {
    const result = await runProcess(connection, {
      command: fakeSudo("s3cret", "cat; echo ran >&2"),
      sudo: { ...exchange, password: "s3cret" },
      stdin: "user input",
    });
    expect(result).toMatchObject({ exitCode: 0, stdout: "user input", stderr: "ran\n" });
    expect(result.stdout + result.stderr).not.toContain("s3cret");
  });

  it("fails fast with a wrong-password SudoError on a second prompt", async () => {
    const error = await runProcess(connection, {
      command: fakeSudo("right", "true"),
      sudo: { ...exchange, password: "wrong" },
    }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(SudoError);
    expect((error as SudoError).reason).toBe("wrong-password");
    expect((error as SudoError).message).not.toContain("wrong");
  });

  it("accepts no prompt at all (cached credentials)", async () => {
    const result = await runProcess(connection, {
      command: "printf '[tunnel-ready-R1]' >&2; echo hi",
      sudo: { ...exchange, password: "unused" },
    });
    expect(result).toMatchObject({ exitCode: 0, stdout: "hi\n", stderr: "" });
  });

  it("turns sudo's own failure before the command started into a typed SudoError", async () => {
    const required = await runProcess(connection, {
      command: "echo 'sudo: a password is required' >&2; exit 1",
      sudo: exchange,
    }).catch((caught: unknown) => caught);
    expect((required as SudoError).reason).toBe("password-required");
    const denied = await runProcess(connection, {
      command: "echo 'tunnel_plain is not in the sudoers file.' >&2; exit 1",
      sudo: exchange,
    }).catch((caught: unknown) => caught);
    expect((denied as SudoError).reason).toBe("not-allowed");
  });

  it("bounds the prompt phase with promptTimeoutMs", async () => {
    const error = await runProcess(connection, {
      command: "sleep 5",
      sudo: { ...exchange, password: "x", promptTimeoutMs: 200 },
    }).catch((caught: unknown) => caught);
    expect((error as SudoError).reason).toBe("prompt-timeout");
  });

  it("does not strip tokens from the command's own output after the exchange", async () => {
    const result = await runProcess(connection, {
      // The command starts after the ready token, as under sudo; stdout and stderr are separate pipes, so without
      // the pause its output could overtake the token.
      command: "printf '[tunnel-ready-R1]' >&2; sleep 0.2; printf '[tunnel-sudo-N1]'",
      sudo: exchange,
    });
    expect(result.stdout).toBe("[tunnel-sudo-N1]");
  });
});

/** A process whose output the test writes by hand, recording everything written to its stdin. */
function scriptedProcess() {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  const written: string[] = [];
  const stdin = new Writable({
    write(chunk: Buffer, _encoding, done) {
      written.push(chunk.toString());
      done();
    },
  });
  let exit!: (status: { exitCode: number | null; signal: string | null }) => void;
  const process: RemoteProcess = {
    stdin,
    stdout,
    stderr,
    started: Promise.resolve(),
    exit: new Promise((resolve) => (exit = resolve)),
    kill: async () => {},
  };
  // The local connection's other members, with this one process as its only spawn.
  const stub: Connection = {
    transport: connection.transport,
    target: connection.target,
    capabilities: connection.capabilities,
    maxChannels: connection.maxChannels,
    get closed() {
      return connection.closed;
    },
    spawn: (request: SpawnRequest) => {
      request.signal?.addEventListener("abort", () => exit({ exitCode: null, signal: "SIGTERM" }), { once: true });
      return process;
    },
    upload: (request) => connection.upload(request),
    download: (request) => connection.download(request),
    ping: (options) => connection.ping(options),
    close: () => connection.close(),
    onClose: (listener) => connection.onClose(listener),
  };
  return { stub, stdout, stderr, written, exit: (code: number) => exit({ exitCode: code, signal: null }) };
}

describe("runProcess with sudo, once stopped", () => {
  const exchange = { prompt: "[tunnel-sudo-N2]", ready: "[tunnel-ready-R2]", gate: "go-R2", password: "s3cret" };

  it("never answers a prompt nor writes the gate after an abort, whatever arrives later", async () => {
    const { stub, stderr, written } = scriptedProcess();
    const controller = new AbortController();
    const running = runProcess(stub, { command: "x", sudo: exchange, signal: controller.signal });
    controller.abort();
    stderr.write(exchange.prompt);
    stderr.write(exchange.ready);
    await expect(running).rejects.toBeInstanceOf(AbortError);
    await new Promise((resolve) => setImmediate(resolve));
    expect(written).toEqual([]);
  });

  it("answers the prompt once, then writes the gate line before the command's stdin", async () => {
    const { stub, stderr, written, exit } = scriptedProcess();
    let released = 0;
    const running = runProcess(stub, { command: "x", sudo: { ...exchange, onRelease: () => released++ }, stdin: "user input" });
    stderr.write(exchange.prompt);
    await new Promise((resolve) => setImmediate(resolve));
    stderr.write(exchange.ready);
    await new Promise((resolve) => setImmediate(resolve));
    exit(0);
    await running;
    expect(written).toEqual(["s3cret\n", "go-R2\n", "user input"]);
    expect(released).toBe(1);
  });
});

describe("TokenFilter", () => {
  it("finds tokens split across chunks and passes other bytes through", () => {
    const seen: string[] = [];
    const filter = new TokenFilter(["<TOKEN>"], (token) => {
      seen.push(token);
      return "continue";
    });
    const out = [filter.write(Buffer.from("ab<TO")), filter.write(Buffer.from("KEN>cd<T")), filter.write(Buffer.from("x")), filter.flush()];
    expect(Buffer.concat(out).toString()).toBe("abcd<Tx");
    expect(seen).toEqual(["<TOKEN>"]);
  });
});
