import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import * as main from "../src/index.js";
import * as internal from "../src/internal.js";

const manifest = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { exports: Record<string, unknown> };

describe("core's entry points", () => {
  it("offer each name on exactly one of the main and the internal entry", () => {
    const shared = Object.keys(main).filter((name) => name in internal);
    expect(shared).toEqual([]);
  });

  it("keep on the main entry what users and adapter authors need", () => {
    for (const name of [
      "Executor",
      "Fleet",
      "DefaultExecutorConfig",
      "Redactor",
      "NoopTracer",
      "startSpan",
      "runProcess",
      "loginShellCommand",
      "inOwnProcessGroup",
      "quote",
      "rejectUnknownOptions",
      "resolveSshTransportOptions",
      "TunnelError",
      "AuthenticationError",
      "RetriesExhaustedError",
      "hasCode",
      "classifyError",
      "retryAttempts",
      "MAX_COMMAND_BYTES",
    ]) {
      expect(main, name).toHaveProperty(name);
    }
  });

  it("put the internal entry behind the exports map as @tunnel-sh/core/internal, built like the main one", () => {
    expect(Object.keys(manifest.exports)).toEqual([".", "./internal", "./package.json"]);
    expect(manifest.exports["./internal"]).toEqual({ "@tunnel-sh/source": "./src/internal.ts", types: "./dist/internal.d.ts", default: "./dist/internal.js" });
    expect(Object.keys(internal).length).toBeGreaterThan(0);
  });
});
