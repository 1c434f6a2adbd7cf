import { PassThrough } from "node:stream";
import { describe, expect, it } from "vitest";
import { makeStack, makeTransport, runDemo, type StackOptions } from "../src/index.js";

const base: StackOptions = { transport: "ssh2", concurrency: 1, verbosity: 0, traceStream: new PassThrough(), env: {} };

describe("the CLI's stack", () => {
  it("builds either transport from the same option names", async () => {
    for (const transport of ["ssh2", "openssh"] as const) {
      const built = await makeTransport({ ...base, transport, identityFile: "/k", knownHostsFile: "/kh", configFile: "/c" });
      expect(built.name).toBe(transport);
    }
  });

  it("passes the options through, so a bad one is the transport's ConfigError", async () => {
    for (const transport of ["ssh2", "openssh"] as const) {
      await expect(makeTransport({ ...base, transport, knownHostsFile: "/kh", insecureAcceptAnyHostKey: true })).rejects.toMatchObject({
        code: "CONFIG",
        field: "knownHostsFile",
      });
    }
  });

  it("refuses an unknown option by name", async () => {
    await expect(makeTransport({ ...base, knownHosts: "/kh" } as never)).rejects.toMatchObject({ code: "CONFIG", field: "knownHosts" });
    await expect(makeStack({ ...base, identity: "/k" } as never)).rejects.toMatchObject({
      code: "CONFIG",
      field: "identity",
      message: expect.stringContaining("is not an option of makeStack"),
    });
  });

  it("runDemo refuses an unknown option by name, before doing anything", async () => {
    const stdout = new PassThrough();
    const stderr = new PassThrough();
    await expect(runDemo({ stdout, stderr, env: {}, format: "json", colour: true } as never)).rejects.toMatchObject({ code: "CONFIG", field: "colour" });
  });
});
