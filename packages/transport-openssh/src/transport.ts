import { constants } from "node:fs";
import { access, readFile } from "node:fs/promises";
import { homedir } from "node:os";
import { join } from "node:path";
import { AbortError, AuthenticationError, ConfigError, hasCode, type Connection, type ConnectOptions, type Target, type Transport } from "@tunnel-sh/core";
import { parseSshCertificate, sshCertificateProblem, validateTarget } from "@tunnel-sh/core/internal";
import { OpenSshConnection } from "./connection.js";
import { Master } from "./master.js";
import { commonArgs, proxyJumpArg, resolveOptions, type OpenSshTransportOptions, type ResolvedOptions } from "./options.js";
import { runSsh } from "./run-ssh.js";

/**
 * A tunnel `Transport` over the system OpenSSH client: one ControlMaster per connection, every exec and transfer
 * through its control socket, the user's ssh_config, agent, ProxyJump and certificates honoured.
 * @example
 * const transport = new OpenSshTransport({ identityFile: "/home/deploy/.ssh/id_ed25519", knownHostsFile: "./known_hosts" });
 * const connection = await transport.connect({ host: "web-1", user: "deploy" });
 */
export class OpenSshTransport implements Transport {
  readonly name = "openssh";
  private readonly options: ResolvedOptions;

  /** Throws `ConfigError` for invalid options, before any I/O. */
  constructor(options: OpenSshTransportOptions = {}) {
    this.options = resolveOptions(options);
  }

  async connect(target: Target, options: ConnectOptions = {}): Promise<Connection> {
    validateTarget(target);
    if (options.signal?.aborted) throw new AbortError("the connect was aborted", { phase: "connect", target });
    // ssh only warns about an identity file it cannot read and goes on without it; say so before connecting.
    for (const file of this.options.identityFiles) {
      try {
        await access(file, constants.R_OK);
      } catch (error) {
        throw new ConfigError("identityFile", `cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`, { cause: error, target });
      }
    }
    for (const file of this.options.certificateFiles) {
      let text: string;
      try {
        text = await readFile(file, "utf8");
      } catch (error) {
        throw new ConfigError("certificateFile", `cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`, { cause: error, target });
      }
      const certificate = parseSshCertificate(text);
      if (certificate instanceof Error) throw new ConfigError("certificateFile", `cannot use ${file}: ${certificate.message}`, { target });
    }
    let master: Master;
    try {
      master = await Master.start(this.options, target, options.signal);
    } catch (error) {
      throw await this.explainCertificates(error, target);
    }
    return new OpenSshConnection(target, master, this.options);
  }

  /**
   * A refused login says nothing about certificates; check the ones ssh offered (from `ssh -G`: the options,
   * ssh_config's CertificateFile and `<identity>-cert.pub`) for expiry and principals, and say what is wrong.
   */
  private async explainCertificates(error: unknown, target: Target): Promise<unknown> {
    if (!hasCode(error, "AUTHENTICATION")) return error;
    const args = [...commonArgs(this.options, target)];
    for (const file of this.options.identityFiles) args.push("-i", file);
    for (const file of this.options.certificateFiles) args.push("-o", `CertificateFile=${file.replace(/%/g, "%%")}`);
    const settings = await runSsh(this.options, [...args, "-G", "--", target.host], { timeoutMs: 5_000 });
    if (settings.code !== 0) return error;
    const lines = settings.stdout.split("\n").map((line) => line.trim().split(/\s+/));
    const user = lines.find(([key]) => key === "user")?.[1] ?? target.user ?? "";
    const files = new Set<string>();
    for (const [key, raw] of lines) {
      if (raw === undefined) continue;
      const value = raw.startsWith("~/") ? join(homedir(), raw.slice(2)) : raw;
      if (key === "certificatefile") files.add(value);
      if (key === "identityfile") files.add(`${value}-cert.pub`);
    }
    const problems: string[] = [];
    for (const file of files) {
      const text = await readFile(file, "utf8").catch(() => undefined);
      if (text === undefined) continue;
      const certificate = parseSshCertificate(text);
      if (certificate instanceof Error) continue;
      const problem = sshCertificateProblem(certificate, user);
      if (problem !== undefined) problems.push(problem);
    }
    if (problems.length === 0) return error;
    return new AuthenticationError(`${error.message} (${problems.join("; ")})`, { target: error.target, cause: error });
  }

  /** Config file and identities change who we are on the server: the pool keeps such connections apart. */
  identity(_target: Target): string {
    const parts: string[] = [];
    if (this.options.configFile) parts.push(`F=${this.options.configFile}`);
    if (this.options.identityFiles.length > 0) parts.push(`i=${this.options.identityFiles.join(",")}`);
    if (this.options.certificateFiles.length > 0) parts.push(`c=${this.options.certificateFiles.join(",")}`);
    if (this.options.proxyJump !== undefined) parts.push(`J=${proxyJumpArg(this.options.proxyJump) || "none"}`);
    for (const [key, value] of this.options.extraOptions) {
      if (/^(proxyjump|hostname|user|port|hostkeyalias|certificatefile)$/i.test(key)) parts.push(`${key}=${value}`);
    }
    return parts.join(";");
  }
}
