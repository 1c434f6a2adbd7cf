import { EventEmitter } from "node:events";
import { PassThrough } from "node:stream";
import { describe, expect, it } from "vitest";
import { commandInput, readCommandInput, STDIN_LIMIT_BYTES } from "../src/command-input.js";
import { InterruptedError, UsageError } from "../src/usage-error.js";

describe("readCommandInput (tunnel run --stdin)", () => {
  it("reads every byte to the end, binary and text chunks alike", async () => {
    const input = new PassThrough();
    const reading = readCommandInput(input);
    input.write(Buffer.from([0, 255, 10]));
    input.write("é\n");
    input.end(Buffer.from("tail"));
    expect(await reading).toEqual(Buffer.concat([Buffer.from([0, 255, 10]), Buffer.from("é\n"), Buffer.from("tail")]));
  });

  it("gives an empty buffer for empty input", async () => {
    const input = new PassThrough();
    const reading = readCommandInput(input);
    input.end();
    expect((await reading).length).toBe(0);
  });

  it("refuses input past the limit with a UsageError and stops reading", async () => {
    const input = new PassThrough();
    const reading = readCommandInput(input, undefined, 10);
    input.write(Buffer.alloc(6));
    input.write(Buffer.alloc(6));
    const error = await reading.catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(UsageError);
    expect((error as Error).message).toContain("more than 10 bytes on stdin");
    expect(input.listenerCount("data")).toBe(0);
    expect(input.isPaused()).toBe(true);
  });

  it("names the default limit in MiB", async () => {
    const input = new PassThrough();
    const reading = readCommandInput(input);
    input.write(Buffer.alloc(STDIN_LIMIT_BYTES + 1));
    await expect(reading).rejects.toThrow("more than 64 MiB on stdin; copy it with tunnel put");
  });

  it("rejects with InterruptedError when interrupted while reading, and stops listening", async () => {
    const input = new PassThrough();
    const interrupt = new AbortController();
    const reading = readCommandInput(input, interrupt.signal);
    input.write("partial");
    interrupt.abort();
    await expect(reading).rejects.toBeInstanceOf(InterruptedError);
    expect(input.listenerCount("data")).toBe(0);
    expect(input.listenerCount("end")).toBe(0);
  });

  it("rejects at once when already interrupted, and without a stream to read", async () => {
    await expect(readCommandInput(new PassThrough(), AbortSignal.abort())).rejects.toBeInstanceOf(InterruptedError);
    await expect(readCommandInput(undefined)).rejects.toBeInstanceOf(UsageError);
    await expect(readCommandInput({})).rejects.toThrow("--stdin: there is no stdin to read");
  });

  it("turns a read error into a UsageError naming it", async () => {
    const input = new PassThrough();
    const reading = readCommandInput(input);
    input.destroy(new Error("EIO"));
    await expect(reading).rejects.toThrow("--stdin: cannot read stdin: EIO");
  });
});

describe("commandInput (--stdin for one host or several)", () => {
  it("hands one host the stream itself, and lets go of it on release", async () => {
    const input = new PassThrough();
    const taken = await commandInput(input, 1);
    expect(taken.stdin).toBe(input);
    const sink = new PassThrough();
    input.pipe(sink);
    taken.release();
    expect(input.isPaused()).toBe(true);
    expect(input.listenerCount("data")).toBe(0);
  });

  it("reads everything first for several hosts", async () => {
    const input = new PassThrough();
    const taking = commandInput(input, 3);
    input.end("for all of them");
    expect((await taking).stdin).toEqual(Buffer.from("for all of them"));
  });

  it("reads everything first when the input cannot be piped, even for one host", async () => {
    const input = new EventEmitter() as EventEmitter & { resume(): void; pause(): void };
    input.resume = () => undefined;
    input.pause = () => undefined;
    const taking = commandInput(input, 1);
    input.emit("data", Buffer.from("typed"));
    input.emit("end");
    expect((await taking).stdin).toEqual(Buffer.from("typed"));
  });
});
