import { describe, expect, it } from "vitest";
import { InterruptedError, UsageError, promptHidden, terminalKeyboardInteractive } from "../src/index.js";
import { Capture, FakeTerminal } from "./support.js";

describe("promptHidden", () => {
  it("reads a line in raw mode without echoing it, honouring backspace, and restores the terminal", async () => {
    const terminal = new FakeTerminal();
    const out = new Capture();
    const answer = promptHidden("sudo password: ", terminal, out);
    terminal.type("s3cretX\u007f");
    terminal.type("!\r");
    await expect(answer).resolves.toBe("s3cret!");
    expect(out.text).toBe("sudo password: \n");
    expect(terminal.modes).toEqual([true, false]);
    expect(terminal.listenerCount("data")).toBe(0);
  });

  it("rejects with InterruptedError on Ctrl-C", async () => {
    const terminal = new FakeTerminal();
    const answer = promptHidden("pw: ", terminal, new Capture());
    terminal.type("abc\u0003");
    await expect(answer).rejects.toBeInstanceOf(InterruptedError);
    expect(terminal.rawMode).toBe(false);
  });

  it("refuses to prompt when stdin is not a terminal", async () => {
    await expect(
      promptHidden(
        "pw: ",
        { isTTY: false, on: () => undefined, removeListener: () => undefined, resume: () => undefined, pause: () => undefined },
        new Capture(),
      ),
    ).rejects.toBeInstanceOf(UsageError);
  });
});

describe("terminalKeyboardInteractive", () => {
  const request = (prompts: Array<{ prompt: string; echo: boolean }>, signal = new AbortController().signal) => ({
    target: { host: "web-1", user: "deploy" },
    name: "",
    instructions: "",
    prompts,
    signal,
  });

  it("asks each prompt on the terminal, hiding answers unless the server allows echo", async () => {
    const terminal = new FakeTerminal();
    const out = new Capture();
    const handler = terminalKeyboardInteractive(terminal, out);
    const answers = handler(
      request([
        { prompt: "Verification code: ", echo: false },
        { prompt: "Site: ", echo: true },
      ]),
    );
    await new Promise((resolve) => setImmediate(resolve));
    terminal.type("123456\r");
    await new Promise((resolve) => setImmediate(resolve));
    terminal.type("lab\r");
    await expect(answers).resolves.toEqual(["123456", "lab"]);
    expect(out.text).toBe("[deploy@web-1] Verification code: \n[deploy@web-1] Site: lab\n");
    expect(out.text).not.toContain("123456");
  });

  it("stops asking when the login's signal aborts", async () => {
    const terminal = new FakeTerminal();
    const controller = new AbortController();
    const answers = terminalKeyboardInteractive(terminal, new Capture())(request([{ prompt: "Code: ", echo: false }], controller.signal));
    await new Promise((resolve) => setImmediate(resolve));
    controller.abort(new Error("connect timed out"));
    await expect(answers).rejects.toThrow("connect timed out");
    expect(terminal.listenerCount("data")).toBe(0);
  });

  it("without a terminal the question is refused", async () => {
    const handler = terminalKeyboardInteractive(undefined, new Capture());
    await expect(handler(request([{ prompt: "Code: ", echo: false }]))).rejects.toBeInstanceOf(UsageError);
  });
});
