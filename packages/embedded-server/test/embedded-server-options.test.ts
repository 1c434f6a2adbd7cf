import { readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { describe, expect, it } from "vitest";
import { TestServerOptionError, startTestServer, type TestServerOptions } from "@tunnel-sh/embedded-server";

/** Key folders this test process has made (each server makes one before it listens). */
function keyFolders(): string[] {
  return readdirSync(tmpdir()).filter((name) => name.startsWith(`tunnel-test-server-${process.pid}-`));
}

async function refusal(options: unknown): Promise<TestServerOptionError> {
  const before = keyFolders();
  const error = await startTestServer(options as TestServerOptions).then(
    async (server) => {
      await server.close();
      throw new Error("startTestServer accepted the options");
    },
    (thrown: unknown) => thrown,
  );
  expect(keyFolders()).toEqual(before);
  expect(error).toBeInstanceOf(TestServerOptionError);
  expect(error).toBeInstanceOf(TypeError);
  return error as TestServerOptionError;
}

describe("startTestServer options", () => {
  it("refuses an unknown option, naming it and the known ones, before any key or port", async () => {
    const error = await refusal({ maxSession: 2 });
    expect(error).toMatchObject({ code: "CONFIG", field: "maxSession", name: "TestServerOptionError" });
    expect(error.message).toMatch(/^maxSession: is not an option of startTestServer; known options: port, users, maxSessions/);
  });

  it("refuses an unknown key of a user, with the user's index, and never shows a password", async () => {
    const error = await refusal({
      users: [
        { name: "alice", password: "hunter2-secret" },
        { name: "bob", pasword: "hunter2-secret" },
      ],
    });
    expect(error.field).toBe("users[1].pasword");
    expect(error.message).not.toContain("hunter2-secret");
  });

  it("refuses an unknown fault", async () => {
    expect((await refusal({ faults: { dropAfter: 10 } })).field).toBe("faults.dropAfter");
  });

  it("refuses options, users and faults that are not objects or arrays", async () => {
    expect((await refusal("port=22")).field).toBe("options");
    expect((await refusal({ users: { name: "alice" } })).field).toBe("users");
    expect((await refusal({ users: ["alice"] })).field).toBe("users[0]");
    expect((await refusal({ faults: true })).field).toBe("faults");
  });

  it("refuses an unusable value with the same error", async () => {
    expect(await refusal({ maxSessions: 0 })).toMatchObject({ field: "maxSessions", message: "maxSessions: must be a positive integer" });
    expect((await refusal({ users: [] })).field).toBe("users");
    expect((await refusal({ users: [{ name: "alice", publicKeys: ["not a key"] }] })).field).toBe("users[0].publicKeys");
  });
});
