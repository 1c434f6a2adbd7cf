import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { describeAuthenticationConformance } from "@tunnel-sh/testing";
import { OpenSshTransport } from "../src/index.js";

// No guard: where sshd cannot run, startSshd() rejects with the reason and the suite fails rather than skips.
describeAuthenticationConformance("openssh", (options) => new OpenSshTransport(options), { describe, it, expect, beforeAll, afterAll });
