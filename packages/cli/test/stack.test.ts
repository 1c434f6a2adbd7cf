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

describe("second factors and agent forwarding in the stack", () => {
  it("asks keyboard-interactive questions on the terminal only when stdin is one, and passes --forward-agent on", async () => {
    const { stackOptions } = await import("../src/stack.js");
    const { FakeTerminal, Capture } = await import("./support.js");
    const common = { transport: "ssh2" as const, concurrency: 1, verbose: 0, forwardAgent: true };
    const withTerminal = stackOptions(common, new Capture(), {}, new FakeTerminal());
    expect(typeof withTerminal.onKeyboardInteractive).toBe("function");
    expect(withTerminal.forwardAgent).toBe(true);
    expect(stackOptions(common, new Capture(), {}).onKeyboardInteractive).toBeUndefined();
    // Both transports take the callback under the shared name.
    for (const transport of ["ssh2", "openssh"] as const) {
      expect((await makeTransport({ ...base, ...withTerminal, transport, traceStream: base.traceStream })).name).toBe(transport);
    }
  });
});
