import { userInfo } from "node:os";
import { PassThrough } from "node:stream";
import { describe, expect, it } from "vitest";
import {
  describeTransportConformance,
  FakeTransport,
  localShellReply,
  type FakeTransportOptions,
  type SpawnHandler,
  type SpawnReplyFunction,
  type TestRunner,
} from "@tunnel-sh/testing";

type Body = () => Promise<void> | void;

/** Registers the suite with a recording runner, so a test can run one case against a deliberately broken transport. */
function suiteFor(options: FakeTransportOptions) {
  const cases = new Map<string, Body>();
  const before: Body[] = [];
  const after: Body[] = [];
  const runner: TestRunner = {
    describe: (_name, body) => body(),
    it: (name, body) => cases.set(name, body),
    expect,
    beforeAll: (body) => before.push(body),
    afterAll: (body) => after.push(body),
  };
  describeTransportConformance(
    "broken",
    async () => ({ transport: new FakeTransport(options), target: { host: "localhost", user: userInfo().username } }),
    runner,
  );
  return {
    names: [...cases.keys()],
    /** Run the case whose name contains `name`; resolves with its failure (undefined when it passed). */
    async run(name: string): Promise<unknown> {
      const body = [...cases].find(([caseName]) => caseName.includes(name))?.[1];
      if (!body) throw new Error(`no case named like ${name}`);
      for (const hook of before) await hook();
      try {
        await body();
        return undefined;
      } catch (error) {
        return error;
      } finally {
        for (const hook of after) await hook();
      }
    },
  };
}

/** localShellReply, but with the process changed by `change`. */
function brokenShell(change: (handler: SpawnHandler) => SpawnHandler): SpawnReplyFunction {
  return async (request, connection) => change((await localShellReply(request, connection)) as SpawnHandler);
}

describe("describeTransportConformance", () => {
  it("registers every case of the contract under one describe", () => {
    expect(suiteFor({ spawn: localShellReply }).names).toEqual([
      "connects to the target",
      "runs echo and collects its output",
      "reports exit codes 0, 1, 42 and 255 as data",
      "keeps stderr apart from stdout",
      "reports death by a signal as { exitCode: null, signal }",
      "streams 50 MiB of output to the listener while collecting only up to the cap",
      "completes a command whose output is past the cap on both streams",
      "is binary-safe: all 256 byte values come out, and go in and out, unchanged",
      "passes stdin from a string and from a large Buffer, then EOF",
      "allocates a pty on request: tty succeeds and lines end in \\r\\n",
      "runs maxChannels commands on one connection at the same time",
      "fails with a typed error within seconds when the connection drops mid-command",
      "stops the remote process when the request's signal aborts, and the connection stays usable",
      "stops the remote process on kill(), and the connection stays usable",
      "closes: idempotent, tells onClose once without an error, fails running and later processes",
    ]);
  });

  it("fails a transport that loses exit codes", async () => {
    const suite = suiteFor({ spawn: { stdout: "code-0\n" } });
    expect(String(await suite.run("exit codes"))).toContain("exit 1");
  });

  it("fails a transport that merges stderr into stdout", async () => {
    const suite = suiteFor({ spawn: { stdout: "out\nerr\nmore\n" } });
    expect(String(await suite.run("stderr apart"))).toMatch(/AssertionError/);
  });

  it("fails a transport that reports a killed process as an exit code", async () => {
    const suite = suiteFor({ spawn: { exitCode: 143 } });
    expect(String(await suite.run("death by a signal"))).toContain("kill -TERM");
  });

  it("fails a transport whose abort leaves the remote process running", async () => {
    const suite = suiteFor({ spawn: brokenShell((handler) => ({ run: (io) => handler.run({ ...io, onKill: () => {} }) })) });
    const failure = await suite.run("signal aborts");
    expect(String(failure)).toMatch(/sleep \d+ is gone/);
  }, 30_000);

  it("fails a transport that corrupts bytes", async () => {
    const suite = suiteFor({
      spawn: brokenShell((handler) => ({
        run: (io) => {
          const { stdout } = io;
          const lossy = new PassThrough();
          lossy.on("data", (chunk: Buffer) => stdout.write(Buffer.from(chunk.toString("utf8"))));
          return Promise.resolve(handler.run({ ...io, stdout: lossy })).then(async (status) => {
            lossy.end();
            await new Promise((resolve) => setImmediate(resolve));
            return status;
          });
        },
      })),
    });
    expect(String(await suite.run("binary-safe"))).toMatch(/AssertionError/);
  });
});
