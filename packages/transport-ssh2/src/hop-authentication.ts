/**
 * How each hop authenticates: the keys (files, memory, certificates beside them), the agent, a password and
 * keyboard-interactive rounds, tried in OpenSSH's order; and what a refused login with certificates says.
 */
import { readFileSync } from "node:fs";
import { AuthenticationError, ConfigError, hasCode, type KeyboardInteractiveHandler, type Target } from "@tunnel-sh/core";
import { parseSshCertificate, sshCertificateProblem, type SshCertificate } from "@tunnel-sh/core/internal";
import type { AnyAuthMethod, AuthenticationType, ParsedKey } from "ssh2";
import type { Hop } from "./hop.js";
import type { ResolvedOptions } from "./options.js";
import { certificateAgent, certificateKey, installCertificateSupport, loadSsh2 } from "./ssh2-certificates.js";
import { defaultIdentityFiles } from "./ssh-config-resolver.js";

export type AuthHandler = (methodsLeft: AuthenticationType[] | null) => AnyAuthMethod | false;

/** How one hop authenticates: ssh2's handler, and the certificates it offers (to explain a refusal). */
export interface HopAuth {
  readonly handler: AuthHandler;
  readonly certificates: readonly SshCertificate[];
}

/** Read and parse the hop's keys now (a bad key is a `ConfigError` before any network I/O) and build its ssh2 handler. */
export function hopAuthentication(options: ResolvedOptions, hop: Hop, promptSignal: AbortSignal): HopAuth {
  const username = hop.user;
  const password = options.password;
  const agent = options.agent === false || options.identitiesOnly ? undefined : (options.agent ?? process.env["SSH_AUTH_SOCK"]);
  const attempts: AnyAuthMethod[] = [];
  if (agent) attempts.push({ type: "agent", username, agent: certificateAgent(agent) });
  const { keys, certificates } = loadKeys(options, hop);
  for (const key of keys) attempts.push({ type: "publickey", username, key });
  const onKeyboardInteractive = options.onKeyboardInteractive;
  if (onKeyboardInteractive !== undefined) {
    const hopTarget: Target = { host: hop.host, port: hop.port, user: hop.user };
    attempts.push({ type: "keyboard-interactive", username, prompt: keyboardInteractivePrompt(onKeyboardInteractive, hopTarget, promptSignal) });
    if (password !== undefined) attempts.push({ type: "password", username, password });
  } else if (password !== undefined) {
    let rounds = 0;
    attempts.push({
      type: "keyboard-interactive",
      username,
      prompt: (_name, _instructions, _lang, prompts, finish) => {
        // Answer the first round that asks anything with the password; a second one means it was wrong.
        if (prompts.length > 0) rounds++;
        finish(prompts.map(() => (rounds === 1 ? password : "")));
      },
    });
    attempts.push({ type: "password", username, password });
  }
  if (attempts.length === 0) attempts.push({ type: "none", username });
  const handler: AuthHandler = (methodsLeft) => {
    while (attempts.length > 0) {
      const attempt = attempts.shift() as AnyAuthMethod;
      const method = attempt.type === "agent" ? "publickey" : attempt.type;
      if (!methodsLeft || methodsLeft.includes(method as AuthenticationType)) return attempt;
    }
    return false;
  };
  return { handler, certificates };
}

function loadKeys(options: ResolvedOptions, hop: Hop): { keys: ParsedKey[]; certificates: SshCertificate[] } {
  const passphrase = options.passphrase;
  const keys: ParsedKey[] = [];
  const inMemory = options.privateKey;
  if (inMemory !== undefined) {
    const key = parseKey(typeof inMemory === "string" ? inMemory : Buffer.from(inMemory), passphrase);
    if (key instanceof Error) throw new ConfigError("privateKey", `cannot use the key given: ${key.message}`);
    keys.push(key);
  }
  const files: string[] = [];
  for (const file of options.identityFiles) {
    let data: Buffer;
    try {
      data = readFileSync(file);
    } catch (error) {
      throw new ConfigError("identityFile", `cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`, { cause: error });
    }
    const key = parseKey(data, passphrase);
    if (key instanceof Error) throw new ConfigError("identityFile", `cannot use ${file}: ${key.message}`);
    keys.push(key);
    files.push(file);
  }
  if (inMemory === undefined && options.identityFiles.length === 0) {
    for (const file of hop.identityFiles.length > 0 ? hop.identityFiles : defaultIdentityFiles()) {
      let data: Buffer;
      try {
        data = readFileSync(file);
      } catch {
        continue; // OpenSSH skips identity files that do not exist
      }
      const key = parseKey(data, passphrase);
      if (!(key instanceof Error)) {
        keys.push(key);
        files.push(file);
      }
    }
  }
  const certificates = loadCertificates(options, hop, files);
  if (certificates.length === 0) return { keys, certificates };
  try {
    installCertificateSupport();
  } catch (error) {
    throw new ConfigError("certificateFile", (error as Error).message, { cause: error });
  }
  // Like OpenSSH: a key's certificate is offered first, then the bare key.
  const offered: ParsedKey[] = [];
  for (const key of keys) {
    const blob = key.getPublicSSH();
    for (const certificate of certificates) if (certificate.publicKey.equals(blob)) offered.push(certificateKey(key, certificate));
    offered.push(key);
  }
  return { keys: offered, certificates };
}

/** The certificate option's files (must be readable), ssh_config's, and `<identity>-cert.pub` beside each identity. */
function loadCertificates(options: ResolvedOptions, hop: Hop, identityFiles: readonly string[]): SshCertificate[] {
  const certificates: SshCertificate[] = [];
  const read = (file: string, required: boolean): void => {
    let text: string;
    try {
      text = readFileSync(file, "utf8");
    } catch (error) {
      if (!required) return;
      throw new ConfigError("certificateFile", `cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`, { cause: error });
    }
    const certificate = parseSshCertificate(text);
    if (certificate instanceof Error) {
      if (!required) return;
      throw new ConfigError("certificateFile", `cannot use ${file}: ${certificate.message}`);
    }
    if (!certificates.some((known) => known.blob.equals(certificate.blob))) certificates.push(certificate);
  };
  for (const file of options.certificateFiles) read(file, true);
  for (const file of hop.certificateFiles) read(file, false);
  for (const file of identityFiles) read(`${file}-cert.pub`, false);
  return certificates;
}

/** The agent to forward to the final host, when forwarding is on (the option, else ssh_config's ForwardAgent). */
export function agentForwarding(options: ResolvedOptions, final: Hop): string | undefined {
  if (!(options.forwardAgent ?? final.forwardAgent ?? false)) return undefined;
  const agent = options.agent === false ? undefined : (options.agent ?? process.env["SSH_AUTH_SOCK"]);
  // Like OpenSSH, ssh_config's ForwardAgent without an agent forwards nothing; the option asks for it explicitly.
  if (!agent && options.forwardAgent === true) throw new ConfigError("forwardAgent", "there is no agent to forward: set agent or SSH_AUTH_SOCK");
  return agent || undefined;
}

function parseKey(data: Buffer | string, passphrase: string | undefined): ParsedKey | Error {
  const parsed = loadSsh2().utils.parseKey(data, passphrase);
  const key = Array.isArray(parsed) ? (parsed[0] as ParsedKey | undefined) : parsed;
  if (!key) return new Error("no key found");
  if (key instanceof Error) return key;
  if (!key.isPrivateKey()) return new Error("not a private key");
  return key;
}

type KeyboardPrompt = Extract<AnyAuthMethod, { type: "keyboard-interactive" }>["prompt"];

/** Hand each keyboard-interactive round to the caller's callback; its answers go to the server and nowhere else. */
function keyboardInteractivePrompt(handler: KeyboardInteractiveHandler, target: Target, signal: AbortSignal): KeyboardPrompt {
  return (name, instructions, _language, prompts, finish) => {
    if (prompts.length === 0) return finish([]);
    const request = { target, name, instructions, prompts: prompts.map(({ prompt, echo }) => ({ prompt, echo: echo === true })), signal };
    Promise.resolve()
      .then(() => handler(request))
      .then(
        (answers) => {
          if (!Array.isArray(answers) || answers.length !== prompts.length || answers.some((answer) => typeof answer !== "string")) finish([]);
          else finish([...(answers as string[])]);
        },
        // A failed callback fails the round: the server then refuses the login, which reports an AuthenticationError.
        () => finish([]),
      );
  };
}

/** A refused login with certificates on offer: say which certificate problems the local check finds. */
export function explainCertificates(error: unknown, hop: Hop, certificates: readonly SshCertificate[]): unknown {
  if (certificates.length === 0 || !hasCode(error, "AUTHENTICATION")) return error;
  const problems = certificates.map((certificate) => sshCertificateProblem(certificate, hop.user)).filter((problem) => problem !== undefined);
  if (problems.length === 0) return error;
  return new AuthenticationError(`${error.message} (${problems.join("; ")})`, { target: error.target, cause: error });
}
