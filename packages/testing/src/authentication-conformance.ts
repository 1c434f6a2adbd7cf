/**
 * How organisations run SSH, as one suite every SSH transport runs with the shared option names
 * (`SshTransportOptions`): user certificates from a CA (beside the key, from `certificateFile`, from ssh_config,
 * from ssh-agent), host certificates through `@cert-authority`, agent forwarding, and keyboard-interactive second
 * factors. It starts its own servers: a CA-only sshd (`TrustedUserCAKeys`, `AuthorizedKeysFile none`, a host
 * certificate) and an sshd that asks `publickey,keyboard-interactive`, plus an ssh-agent.
 *
 * @example
 * describeAuthenticationConformance("ssh2", (options) => new Ssh2Transport(options), { describe, it, expect, beforeAll, afterAll });
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { runProcess, type Connection, type KeyboardInteractiveRequest, type SshTransportOptions, type Target, type Transport } from "@tunnel-sh/core";
import { createCertificateAuthority, startSshAgent, type CertificateAuthority, type CertificateKey, type SshAgent } from "./certificate-authority.js";
import { RecordingTracer } from "./recording-tracer.js";
import { startSshd, type Sshd } from "./sshd.js";
import type { TestRunner } from "./transport-conformance.js";

async function output(connection: Connection, command: string): Promise<{ stdout: string; stderr: string; exitCode: number | null }> {
  const result = await runProcess(connection, { command, maxOutputBytes: 1024 * 1024 });
  return { stdout: result.stdout, stderr: result.stderr, exitCode: result.exitCode };
}

/** Run the suite; `makeTransport` builds the transport under test from shared options only. */
export function describeAuthenticationConformance(name: string, makeTransport: (options: SshTransportOptions) => Transport, runner: TestRunner): void {
  const { describe, it, expect, beforeAll, afterAll } = runner;

  describe(`${name}: certificates, agent forwarding, second factors`, () => {
    let ca: CertificateAuthority;
    let caOnly: Sshd;
    let secondFactor: Sshd;
    let agent: SshAgent;
    let ed25519: CertificateKey;
    let knownHosts: string;
    let target: Target;

    beforeAll(async () => {
      ca = await createCertificateAuthority();
      [caOnly, secondFactor] = await Promise.all([
        startSshd({
          usePam: false,
          extraConfig: [`TrustedUserCAKeys ${ca.caPublicKeyPath}`, "AuthorizedKeysFile none", "PasswordAuthentication no", "KbdInteractiveAuthentication no"],
          hostCertificate: { authority: ca },
        }),
        startSshd({ extraConfig: ["AuthenticationMethods publickey,keyboard-interactive", "PasswordAuthentication no"] }),
      ]);
      agent = await startSshAgent();
      ed25519 = await ca.createKey("id_ed25519", "ed25519");
      await ca.signUserKey(ed25519.publicKeyPath, { principals: [caOnly.users.plain.name] });
      knownHosts = join(ca.dir, "known_hosts");
      // The user-certificate cases check the host by its key; the host certificate cases check it by its CA.
      writeFileSync(knownHosts, `${caOnly.knownHostsLine}\n`);
      target = { host: caOnly.host, port: caOnly.port, user: caOnly.users.plain.name };
    }, 60_000);

    afterAll(async () => {
      await agent?.stop();
      await Promise.all([caOnly?.stop(), secondFactor?.stop()]);
      await ca?.remove();
    });

    const base = (extra: SshTransportOptions): SshTransportOptions => ({ knownHostsFile: knownHosts, configFile: false, agent: false, ...extra });

    async function loginUser(options: SshTransportOptions): Promise<string> {
      const connection = await makeTransport(base(options)).connect(target);
      try {
        const result = await output(connection, "id -un");
        return result.stdout.trim();
      } finally {
        await connection.close();
      }
    }

    async function refusal(options: SshTransportOptions, connectTo: Target = target): Promise<Error & { code?: string }> {
      const error = await makeTransport(options)
        .connect(connectTo)
        .then(
          async (connection) => {
            await connection.close();
            return undefined;
          },
          (caught: unknown) => caught,
        );
      expect(error).toBeDefined();
      return error as Error & { code?: string };
    }

    describe("user certificates", () => {
      it("logs in with the ed25519 certificate beside the key (<key>-cert.pub) on a server that trusts only the CA", async () => {
        expect(await loginUser({ identityFile: ed25519.privateKeyPath })).toBe(target.user);
      });

      it("the bare key without its certificate is refused: the server has no authorized_keys", async () => {
        const bare = await ca.createKey("bare", "ed25519");
        const error = await refusal(base({ identityFile: bare.privateKeyPath }));
        expect(error).toMatchObject({ name: "AuthenticationError", code: "AUTHENTICATION" });
      });

      it("logs in with an RSA certificate named by certificateFile (rsa-sha2 signatures)", async () => {
        const rsa = await ca.createKey("id_rsa", "rsa");
        const certificate = await ca.signUserKey(rsa.publicKeyPath, { principals: [target.user as string], certificatePath: join(ca.dir, "issued-rsa.pub") });
        expect(await loginUser({ identityFile: rsa.privateKeyPath, certificateFile: certificate })).toBe(target.user);
      });

      it("logs in with ssh_config's CertificateFile", async () => {
        const key = await ca.createKey("config-key", "ed25519");
        const certificate = await ca.signUserKey(key.publicKeyPath, { principals: [target.user as string], certificatePath: join(ca.dir, "from-config.pub") });
        const config = join(ca.dir, "ssh_config");
        writeFileSync(config, `Host ${target.host}\n  IdentityFile ${key.privateKeyPath}\n  CertificateFile ${certificate}\n`);
        expect(await loginUser({ configFile: config })).toBe(target.user);
      });

      it("logs in with a certificate held by ssh-agent", async () => {
        const key = await ca.createKey("agent-key", "ed25519");
        await ca.signUserKey(key.publicKeyPath, { principals: [target.user as string] });
        await agent.add(key.privateKeyPath);
        expect(await loginUser({ agent: agent.socketPath, identitiesOnly: false })).toBe(target.user);
      });

      it("an expired certificate is an AuthenticationError that says it expired", async () => {
        const key = await ca.createKey("expired", "ed25519");
        await ca.signUserKey(key.publicKeyPath, { principals: [target.user as string], validity: "20200101:20200102" });
        const error = await refusal(base({ identityFile: key.privateKeyPath }));
        expect(error).toMatchObject({ name: "AuthenticationError", code: "AUTHENTICATION" });
        expect(error.message).toMatch(/expired/);
      });

      it("a certificate for another principal is an AuthenticationError that names the principals", async () => {
        const key = await ca.createKey("other-principal", "ed25519");
        await ca.signUserKey(key.publicKeyPath, { principals: ["someone-else"] });
        const error = await refusal(base({ identityFile: key.privateKeyPath }));
        expect(error).toMatchObject({ name: "AuthenticationError", code: "AUTHENTICATION" });
        expect(error.message).toMatch(/someone-else/);
        expect(error.message).toMatch(new RegExp(`not the login user "${target.user as string}"`));
      });
    });

    describe("host certificates", () => {
      let rsaHost: Sshd;
      let expiredHost: Sshd;
      let otherPrincipalHost: Sshd;

      beforeAll(async () => {
        const serve = (hostCertificate: Omit<NonNullable<Parameters<typeof startSshd>[0]>["hostCertificate"] & object, "authority">) =>
          startSshd({
            usePam: false,
            extraConfig: [`TrustedUserCAKeys ${ca.caPublicKeyPath}`, "AuthorizedKeysFile none", "PasswordAuthentication no", "KbdInteractiveAuthentication no"],
            hostCertificate: { authority: ca, ...hostCertificate },
          });
        [rsaHost, expiredHost, otherPrincipalHost] = await Promise.all([
          serve({ keyType: "rsa" }),
          serve({ validity: "20200101:20200102" }),
          serve({ principals: ["other.example"] }),
        ]);
      }, 60_000);

      afterAll(async () => {
        await Promise.all([rsaHost?.stop(), expiredHost?.stop(), otherPrincipalHost?.stop()]);
      });

      let files = 0;
      /** A known_hosts file holding `lines`, and the options that check the host against it only. */
      const withKnownHosts = (...lines: string[]): SshTransportOptions => {
        const file = join(ca.dir, `known_hosts_${++files}`);
        writeFileSync(file, lines.map((line) => `${line}\n`).join(""));
        return { identityFile: ed25519.privateKeyPath, knownHostsFile: file, configFile: false, agent: false };
      };
      const caLine = (server: Sshd, authority: CertificateAuthority = ca) => `@cert-authority [${server.host}]:${server.port} ${authority.caPublicKey}`;
      const targetOf = (server: Sshd): Target => ({ host: server.host, port: server.port, user: target.user as string });
      async function connects(options: SshTransportOptions, server: Sshd = caOnly): Promise<void> {
        const connection = await makeTransport(options).connect(targetOf(server));
        try {
          expect((await output(connection, "id -un")).stdout.trim()).toBe(target.user);
        } finally {
          await connection.close();
        }
      }
      async function hostKeyRefusal(options: SshTransportOptions, server: Sshd = caOnly): Promise<Error & { code?: string }> {
        const error = await refusal(options, targetOf(server));
        expect(error).toMatchObject({ name: "HostKeyError", code: "HOST_KEY" });
        return error;
      }

      it("a @cert-authority line for the host verifies the server's ed25519 host certificate", async () => {
        await connects(withKnownHosts(caLine(caOnly)));
      });

      it("a @cert-authority line verifies an RSA host certificate (rsa-sha2 signatures)", async () => {
        await connects(withKnownHosts(caLine(rsaHost)), rsaHost);
      });

      it("a @cert-authority line with a wildcard pattern verifies the host certificate", async () => {
        await connects(withKnownHosts(`@cert-authority [127.0.0.*]:${caOnly.port} ${ca.caPublicKey}`));
      });

      it("a host listed both with its key and with a CA line connects, whichever is tried", async () => {
        await connects(withKnownHosts(caOnly.knownHostsLine, caLine(caOnly)));
        await connects(withKnownHosts(caLine(caOnly), caOnly.knownHostsLine));
      });

      it("a host listed with its key connects even when its CA line names another CA", async () => {
        const other = await createCertificateAuthority();
        try {
          await connects(withKnownHosts(caLine(caOnly, other), caOnly.knownHostsLine));
        } finally {
          await other.remove();
        }
      });

      it("@revoked for the host key wins over the CA", async () => {
        await hostKeyRefusal(withKnownHosts(caLine(caOnly), `@revoked * ${caOnly.hostPublicKey}`));
      });

      it("@revoked for the RSA host key wins over the CA", async () => {
        await hostKeyRefusal(withKnownHosts(caLine(rsaHost), `@revoked * ${rsaHost.hostCertificate?.publicKey ?? "missing"}`), rsaHost);
      });

      it("@revoked for the host certificate wins over the CA", async () => {
        await hostKeyRefusal(withKnownHosts(caLine(caOnly), `@revoked * ${caOnly.hostCertificate?.certificate ?? "missing"}`));
      });

      it("@revoked for the CA wins over its @cert-authority line", async () => {
        await hostKeyRefusal(withKnownHosts(caLine(caOnly), `@revoked * ${ca.caPublicKey}`));
      });

      it("a host certificate from another CA is a HostKeyError", async () => {
        const other = await createCertificateAuthority();
        try {
          await hostKeyRefusal(withKnownHosts(caLine(caOnly, other)));
        } finally {
          await other.remove();
        }
      });

      it("an expired host certificate is a HostKeyError that says it expired", async () => {
        const error = await hostKeyRefusal(withKnownHosts(caLine(expiredHost)), expiredHost);
        expect(error.message).toMatch(/expired/i);
      });

      it("a host certificate for another host name is a HostKeyError that says the name is not a principal", async () => {
        const error = await hostKeyRefusal(withKnownHosts(caLine(otherPrincipalHost)), otherPrincipalHost);
        expect(error.message).toMatch(/principal/i);
      });
    });

    describe("agent forwarding", () => {
      it("is off by default: the remote side has no agent", async () => {
        const connection = await makeTransport(base({ identityFile: ed25519.privateKeyPath, agent: agent.socketPath })).connect(target);
        try {
          const result = await output(connection, "ssh-add -l; echo status=$?");
          expect(result.stdout).toMatch(/status=2/);
        } finally {
          await connection.close();
        }
      });

      it("forwardAgent: the remote ssh-add -l lists the caller's keys, and no span holds the socket path", async () => {
        const key = await ca.createKey("forwarded", "ed25519");
        await agent.add(key.privateKeyPath);
        const tracer = new RecordingTracer();
        const span = tracer.startSpan("tunnel.connect");
        const connection = await makeTransport(base({ identityFile: ed25519.privateKeyPath, agent: agent.socketPath, forwardAgent: true })).connect(target, {
          span,
        });
        try {
          const result = await output(connection, "ssh-add -l; echo status=$?");
          expect(result.stdout).toMatch(/status=0/);
          expect(result.stdout).toMatch(/forwarded/);
        } finally {
          await connection.close();
          span.end();
        }
        expect(JSON.stringify(tracer.spans.map((recorded) => [recorded.attributes, recorded.events]))).not.toContain(agent.socketPath);
      });
    });

    describe("second factors (publickey,keyboard-interactive)", () => {
      const factorTarget = (): Target => ({ host: secondFactor.host, port: secondFactor.port, user: secondFactor.users.plain.name });
      const factorOptions = (extra: SshTransportOptions): SshTransportOptions => ({
        identityFile: secondFactor.clientKeyPath,
        knownHostsFile: secondFactor.knownHostsPath,
        configFile: false,
        agent: false,
        ...extra,
      });

      it("after the key, the server's prompts go to onKeyboardInteractive and its answers log in", async () => {
        const requests: KeyboardInteractiveRequest[] = [];
        const transport = makeTransport(
          factorOptions({
            onKeyboardInteractive: (request) => {
              requests.push(request);
              return request.prompts.map(() => secondFactor.users.plain.password);
            },
          }),
        );
        const connection = await transport.connect(factorTarget());
        try {
          expect((await output(connection, "id -un")).stdout.trim()).toBe(secondFactor.users.plain.name);
        } finally {
          await connection.close();
        }
        expect(requests.length).toBeGreaterThanOrEqual(1);
        const first = requests[0] as KeyboardInteractiveRequest;
        expect(first.prompts[0]?.prompt ?? "").toMatch(/Password/);
        expect(first.prompts[0]?.echo).toBe(false);
        expect(first.target).toMatchObject({ user: secondFactor.users.plain.name });
        expect(first.signal.aborted).toBe(false);
      });

      it("a wrong answer is an AuthenticationError that never shows the answer", async () => {
        const answer = "wrong-second-factor-7319";
        const error = await refusal(factorOptions({ onKeyboardInteractive: (request) => request.prompts.map(() => answer) }), factorTarget());
        expect(error).toMatchObject({ name: "AuthenticationError", code: "AUTHENTICATION" });
        expect(`${error.message} ${JSON.stringify(error)}`).not.toContain(answer);
      });

      it("without a callback the key alone does not get in", async () => {
        const error = await refusal(factorOptions({}), factorTarget());
        expect(error).toMatchObject({ name: "AuthenticationError", code: "AUTHENTICATION" });
      });
    });
  });
}
