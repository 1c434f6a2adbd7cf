import { userInfo } from "node:os";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { describeTransportConformance, FakeTransport, localShellReply } from "@tunnel-sh/testing";

// The fake runs every command in a local /bin/sh, so it must behave like a real transport.
describeTransportConformance(
  "FakeTransport with localShellReply",
  async () => ({
    transport: new FakeTransport({ spawn: localShellReply }),
    target: { host: "localhost", user: userInfo().username },
  }),
  { describe, it, expect, beforeAll, afterAll },
);
