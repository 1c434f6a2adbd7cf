// ssh2 is loaded before the transport, as in an application that imports ssh2 first: its key exchange can no
// longer be prepared for host certificates, and the transport says so rather than verify less.
import ssh2 from "ssh2";
import { hostCertificateSupport } from "../src/ssh2-certificates.js";
import { Ssh2Transport } from "../src/index.js";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import type { ConnectConfig } from "ssh2";
import { FakeClient } from "./fake-client.js";

const dir = mkdtempSync(join(tmpdir(), "tunnel-ssh2-loaded-first-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("ssh2 loaded before the transport", () => {
  it("host certificates are off, and the reason says what to change", () => {
    expect(ssh2.Client).toBeTypeOf("function");
    expect(hostCertificateSupport()).toEqual({
      available: false,
      reason: expect.stringMatching(
        /^ssh2 was loaded before @tunnel-sh\/transport-ssh2 could prepare it for host certificates: import @tunnel-sh\/transport-ssh2 before/,
      ),
    });
  });

  it("a host known only through @cert-authority is refused with a HostKeyError naming that reason; no certificate algorithm is offered", async () => {
    const ca = ssh2.utils.generateKeyPairSync("ed25519");
    const hostKey = ssh2.utils.generateKeyPairSync("ed25519");
    const file = join(dir, "known_hosts");
    writeFileSync(file, `@cert-authority web-* ${ca.public}\n`);
    const client = new FakeClient();
    // The fake client never runs the verifier itself: the handshake is driven by hand below.
    client.onConnect = () => {};
    const connecting = new Ssh2Transport({ configFile: false, agent: false, knownHostsFile: file, createClient: () => client.asClient() }).connect({
      host: "web-1",
      user: "deploy",
    });
    await new Promise((resolve) => setImmediate(resolve));
    const config = client.config as ConnectConfig;
    expect(config.algorithms?.serverHostKey).toBeUndefined();
    let verdict: boolean | undefined;
    (config.hostVerifier as unknown as (key: Buffer, done: (valid: boolean) => void) => void)(
      Buffer.from(hostKey.public.split(" ")[1] as string, "base64"),
      (valid) => (verdict = valid),
    );
    expect(verdict).toBe(false);
    client.drop();
    await expect(connecting).rejects.toMatchObject({
      name: "HostKeyError",
      code: "HOST_KEY",
      message: expect.stringMatching(/trusts a certificate authority for it, but host certificates are off in this process \(ssh2 was loaded before/),
    });
  });
});
