import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { describeDropbearConformance } from "@tunnel-sh/testing";
import { Ssh2Transport } from "../src/index.js";

// Every group is on: dropbear allocates ptys, honours SSH `signal` requests, and serves SFTP through
// /usr/lib/sftp-server (openssh-sftp-server, one of the system packages the tests install).
describeDropbearConformance(
  "ssh2 on dropbear",
  (dropbear) => new Ssh2Transport({ identityFile: dropbear.clientKeyPath, knownHostsFile: dropbear.knownHostsPath, configFile: false, agent: false }),
  { describe, it, expect, beforeAll, afterAll },
);
