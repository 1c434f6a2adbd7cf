import { userInfo } from "node:os";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { describeTransportConformance, FakeTransport, localFileCopy, localShellReply } from "@tunnel-sh/testing";

// The fake runs every command in a local /bin/sh and copies files on this machine, so it must behave like a real
// transport, every group included.
describeTransportConformance(
  "FakeTransport with localShellReply and localFileCopy",
  async () => ({
    transport: new FakeTransport({ spawn: localShellReply, upload: localFileCopy, download: localFileCopy }),
    target: { host: "localhost", user: userInfo().username },
  }),
  { describe, it, expect, beforeAll, afterAll },
);
