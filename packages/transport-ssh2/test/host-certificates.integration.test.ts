// The transport is imported first, as an application would: it prepares ssh2 for host certificates before loading it.
import { Ssh2Transport } from "../src/index.js";
import { loadSsh2 } from "../src/ssh2-certificates.js";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runProcess, type Connection } from "@tunnel-sh/core";
import { createCertificateAuthority, startSshd, type CertificateAuthority, type Sshd } from "@tunnel-sh/testing";
import type { Client } from "ssh2";

// No guard: where sshd cannot run, startSshd() rejects with the reason and the suite fails rather than skips.
describe("host certificates over ssh2, beyond the shared cases", () => {
  let ca: CertificateAuthority;
  let ed25519Host: Sshd;
  let rsaHost: Sshd;
  let knownHosts: string;

  beforeAll(async () => {
    ca = await createCertificateAuthority();
    [ed25519Host, rsaHost] = await Promise.all([
      startSshd({ hostCertificate: { authority: ca } }),
      startSshd({ hostCertificate: { authority: ca, keyType: "rsa" } }),
    ]);
    knownHosts = join(ca.dir, "known_hosts");
    // Both servers are known only through their CA: every handshake below verifies a host certificate.
    writeFileSync(knownHosts, `@cert-authority [127.0.0.1]:* ${ca.caPublicKey}\n`);
  }, 60_000);

  afterAll(async () => {
    await Promise.all([ed25519Host?.stop(), rsaHost?.stop()]);
    await ca?.remove();
  });

  const output = async (connection: Connection, command: string) => (await runProcess(connection, { command, maxOutputBytes: 1 << 20 })).stdout;

  for (const keyType of ["ed25519", "rsa"] as const) {
    it(`a connection verified by an ${keyType} host certificate keeps working across rekeys`, async () => {
      const server = keyType === "rsa" ? rsaHost : ed25519Host;
      let client: Client | undefined;
      const transport = new Ssh2Transport({
        knownHostsFile: knownHosts,
        identityFile: server.clientKeyPath,
        configFile: false,
        agent: false,
        createClient: () => (client = new (loadSsh2().Client)()),
      });
      const connection = await transport.connect({ host: server.host, port: server.port, user: server.users.plain.name });
      try {
        const handshakes: string[] = [];
        (client as Client).on("handshake", (negotiated: { serverHostKey: string }) => handshakes.push(negotiated.serverHostKey));
        for (let round = 0; round < 2; round++) {
          const done = new Promise((resolve) => (client as Client).once("handshake", resolve));
          // ssh2 has no public rekey; Protocol#rekey is what it runs when a server asks for one.
          (client as unknown as { _protocol: { rekey(): void } })._protocol.rekey();
          await done;
          expect(await output(connection, `echo round-${round}`)).toBe(`round-${round}\n`);
        }
        expect(handshakes).toEqual(keyType === "rsa" ? ["rsa-sha2-512", "rsa-sha2-512"] : ["ssh-ed25519", "ssh-ed25519"]);
      } finally {
        await connection.close();
      }
    });
  }

  it("a jump host and the host behind it are both verified by their host certificates", async () => {
    const user = ed25519Host.users.plain.name;
    const transport = new Ssh2Transport({
      knownHostsFile: knownHosts,
      identityFile: ed25519Host.clientKeyPath,
      configFile: false,
      agent: false,
      proxyJump: `${user}@${rsaHost.host}:${rsaHost.port}`,
    });
    const connection = await transport.connect({ host: ed25519Host.host, port: ed25519Host.port, user });
    try {
      expect(await output(connection, "echo via-jump")).toBe("via-jump\n");
    } finally {
      await connection.close();
    }
    const other = await createCertificateAuthority();
    try {
      // The jump host is checked too: a CA line for the destination only does not let the jump host in.
      const destinationOnly = join(ca.dir, "known_hosts_destination_only");
      writeFileSync(
        destinationOnly,
        `@cert-authority [127.0.0.1]:${ed25519Host.port} ${ca.caPublicKey}\n@cert-authority [127.0.0.1]:${rsaHost.port} ${other.caPublicKey}\n`,
      );
      const refused = new Ssh2Transport({
        knownHostsFile: destinationOnly,
        identityFile: ed25519Host.clientKeyPath,
        configFile: false,
        agent: false,
        proxyJump: `${user}@${rsaHost.host}:${rsaHost.port}`,
      });
      await expect(refused.connect({ host: ed25519Host.host, port: ed25519Host.port, user })).rejects.toMatchObject({
        code: "HOST_KEY",
        target: { port: rsaHost.port },
        message: expect.stringMatching(/not by a certificate authority known_hosts trusts for this host/),
      });
    } finally {
      await other.remove();
    }
  });
});
