import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { describeAuthenticationConformance } from "@tunnel-sh/testing";
import { Ssh2Transport } from "../src/index.js";

// No guard: where sshd cannot run, startSshd() rejects with the reason and the suite fails rather than skips.
// ssh2 1.17 cannot negotiate certificate host key algorithms (see the README's limits).
describeAuthenticationConformance("ssh2", (options) => new Ssh2Transport(options), { describe, it, expect, beforeAll, afterAll }, { hostCertificates: false });
