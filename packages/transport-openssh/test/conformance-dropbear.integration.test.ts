import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { describeDropbearConformance } from "@tunnel-sh/testing";
import { OpenSshTransport } from "../src/index.js";

// Every group is on: dropbear allocates ptys, honours SSH `signal` requests, and serves SFTP through
// /usr/lib/sftp-server (openssh-sftp-server, one of the system packages the tests install).
describeDropbearConformance(
  "openssh on dropbear",
  (dropbear) => new OpenSshTransport({ identityFile: dropbear.clientKeyPath, knownHostsFile: dropbear.knownHostsPath, configFile: "/dev/null" }),
  { describe, it, expect, beforeAll, afterAll },
);
