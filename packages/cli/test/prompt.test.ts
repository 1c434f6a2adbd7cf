import { describe, expect, it } from "vitest";
import { InterruptedError, UsageError, promptHidden } from "../src/index.js";
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
    await expect(promptHidden("pw: ", { isTTY: false, on: () => undefined, removeListener: () => undefined, resume: () => undefined, pause: () => undefined }, new Capture())).rejects.toBeInstanceOf(UsageError);
  });
});
