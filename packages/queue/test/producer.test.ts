import { describe, expect, it } from "vitest";
import { freePort } from "@tunnel-sh/testing";
import { ConnectError, ValidationError } from "@tunnel-sh/core";
import { QueueProducer } from "../src/index.js";

describe("QueueProducer without a reachable Redis", () => {
  it("fails a request with ConnectError after connectTimeout instead of waiting for ever", async () => {
    const producer = new QueueProducer({ redis: `redis://127.0.0.1:${await freePort()}`, connectTimeout: 300 });
    try {
      const error = await producer.runCommand({ host: "web-1", cmd: "true" }).catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(ConnectError);
      expect((error as ConnectError).message).toContain("Redis did not answer within 300 ms");
    } finally {
      await producer.close();
    }
  });

  it("refuses a fleet whose operation carries a sudo password before any host starts", async () => {
    const producer = new QueueProducer({ redis: `redis://127.0.0.1:${await freePort()}`, connectTimeout: 300 });
    try {
      const { Fleet } = await import("@tunnel-sh/core");
      expect(() =>
        new Fleet(producer).run({ hosts: [{ host: "web-1" }], operation: { type: "command", cmd: "id", sudo: { password: "hunter2hunter2" } } }),
      ).toThrow(/operation\.sudo\.password/);
    } finally {
      await producer.close();
    }
  });

  it("validates a request before any I/O: an invalid command, a password, a stream on stdin", async () => {
    const producer = new QueueProducer({ redis: `redis://127.0.0.1:${await freePort()}`, connectTimeout: 300 });
    try {
      expect(() => producer.runCommand({ host: "web-1", cmd: "" })).toThrow(ValidationError);
      expect(() => producer.runCommand({ host: "web-1", cmd: "id", sudo: { password: "hunter2hunter2" } })).toThrow(/sudo\.password/);
      const { Readable } = await import("node:stream");
      expect(() => producer.runCommand({ host: "web-1", cmd: "cat", stdin: Readable.from(["x"]) })).toThrow(/stdin/);
    } finally {
      await producer.close();
    }
  });
});
