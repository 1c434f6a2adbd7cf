import { PassThrough } from "node:stream";
import { Redactor } from "@tunnel-sh/core";
import { describe, expect, it } from "vitest";
import { ConsoleTracer } from "../src/index.js";

const stream = new PassThrough();

describe("ConsoleTracer options", () => {
  it("accepts every documented option", () => {
    expect(
      () =>
        new ConsoleTracer({
          stream,
          format: "json",
          level: "debug",
          colors: false,
          redactor: new Redactor(),
          recordCommand: false,
          recordLocalPaths: true,
          clock: () => 0,
          randomHex: (bytes) => "0".repeat(bytes * 2),
        }),
    ).not.toThrow();
  });

  it("refuses an unknown option by name, with the closest known name", () => {
    expect(() => new ConsoleTracer({ stream, colour: true } as never)).toThrow(
      expect.objectContaining({ code: "CONFIG", field: "colour", message: expect.stringContaining("is not an option of ConsoleTracer") }),
    );
    expect(() => new ConsoleTracer({ stream, formt: "json" } as never)).toThrow(
      expect.objectContaining({ message: expect.stringContaining("did you mean format?") }),
    );
  });

  it.each([
    ["stream", { stream: "stdout" }],
    ["stream", undefined],
    ["format", { stream, format: "yaml" }],
    ["level", { stream, level: "warn" }],
    ["colors", { stream, colors: "yes" }],
    ["recordCommand", { stream, recordCommand: 1 }],
    ["recordLocalPaths", { stream, recordLocalPaths: "no" }],
    ["clock", { stream, clock: 5 }],
    ["redactor", { stream, redactor: ["secret"] }],
  ])("refuses a bad %s", (field, options) => {
    expect(() => new ConsoleTracer(options as never)).toThrow(expect.objectContaining({ code: "CONFIG", field }));
  });
});
