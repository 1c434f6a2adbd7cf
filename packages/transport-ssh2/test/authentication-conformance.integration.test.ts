import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { describeAuthenticationConformance } from "@tunnel-sh/testing";
import { Ssh2Transport } from "../src/index.js";

// No guard: where sshd cannot run, startSshd() rejects with the reason and the suite fails rather than skips.
describeAuthenticationConformance("ssh2", (options) => new Ssh2Transport(options), { describe, it, expect, beforeAll, afterAll });
