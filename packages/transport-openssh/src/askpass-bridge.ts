/**
 * Answers ssh's prompts from this process while a master logs in: ssh runs the `SSH_ASKPASS` helper with the prompt
 * as its argument; the helper (a small Node script in the connection's 0700 folder) asks this process over a Unix
 * socket in the same folder and prints the answer for ssh. So answers — keyboard-interactive second factors, the
 * password — travel socket → helper → ssh, and never through argv, an environment or a file.
 */
import { createServer, type Server, type Socket } from "node:net";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { KeyboardInteractiveHandler, Target } from "@tunnel-sh/core";

export interface AskpassBridge {
  /** Environment for the ssh process: the helper and the settings that make ssh use it. */
  readonly env: Readonly<Record<string, string>>;
  /** Stop answering and close the socket. Idempotent. */
  close(): Promise<void>;
}

export interface AskpassBridgeOptions {
  readonly dir: string;
  readonly target: Target;
  readonly password: string | undefined;
  readonly onKeyboardInteractive: KeyboardInteractiveHandler | undefined;
  /** Aborts the pending questions (connect aborted or out of time). */
  readonly signal: AbortSignal;
}

/** The helper: one request (the prompt, ssh's hint) → one line on stdout, or exit 1 for "no answer". */
const HELPER = String.raw`"use strict";
const net = require("node:net");
const socket = net.connect(process.argv[2]);
const chunks = [];
socket.on("connect", () => socket.end(JSON.stringify({ prompt: process.argv[3] ?? "", hint: process.env.SSH_ASKPASS_PROMPT ?? "" })));
socket.on("data", (chunk) => chunks.push(chunk));
socket.on("error", () => process.exit(1));
socket.on("end", () => {
  let reply;
  try { reply = JSON.parse(Buffer.concat(chunks).toString("utf8")); } catch { process.exit(1); }
  if (typeof reply.answer !== "string") process.exit(1);
  process.stdout.write(reply.answer + "\n");
});
`;

function shellWord(value: string): string {
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

/** ssh prefixes a keyboard-interactive prompt with "(user@host) "; the password method asks "user@host's password: ". */
const PASSWORD_METHOD = /'s password: ?$/;
const PASSPHRASE = /passphrase/i;

async function answer(request: { prompt: string; hint: string }, options: AskpassBridgeOptions, rounds: { count: number }): Promise<string | undefined> {
  // Host key confirmations and key passphrases are never answered: tunnel checks host keys itself and takes no
  // passphrases through ssh.
  if (request.hint !== "" || PASSPHRASE.test(request.prompt)) return undefined;
  if (options.password !== undefined && PASSWORD_METHOD.test(request.prompt)) return options.password;
  const handler = options.onKeyboardInteractive;
  if (handler !== undefined) {
    if (options.signal.aborted) return undefined;
    // OpenSSH hands its helper one prompt at a time and does not say whether it would echo: echo is false.
    const answers = await handler({
      target: options.target,
      name: "",
      instructions: "",
      prompts: [{ prompt: request.prompt, echo: false }],
      signal: options.signal,
    });
    return Array.isArray(answers) && answers.length === 1 && typeof answers[0] === "string" && !/[\r\n\0]/.test(answers[0]) ? answers[0] : undefined;
  }
  // Without a callback the password answers the first keyboard-interactive "Password:" prompt only.
  if (options.password !== undefined && /assword/.test(request.prompt) && rounds.count++ === 0) return options.password;
  return undefined;
}

/** Write the helper into `dir` and listen on a socket beside it. */
export async function startAskpassBridge(options: AskpassBridgeOptions): Promise<AskpassBridge> {
  const socketPath = join(options.dir, "a");
  const script = join(options.dir, "askpass.cjs");
  const helper = join(options.dir, "askpass");
  await writeFile(script, HELPER, { mode: 0o600, flag: "wx" });
  await writeFile(helper, `#!/bin/sh\nexec ${shellWord(process.execPath)} ${shellWord(script)} ${shellWord(socketPath)} "$1"\n`, { mode: 0o700, flag: "wx" });
  const rounds = { count: 0 };
  const sockets = new Set<Socket>();
  const server: Server = createServer({ allowHalfOpen: true }, (socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    socket.on("error", () => socket.destroy());
    const chunks: Buffer[] = [];
    socket.on("data", (chunk: Buffer) => chunks.push(chunk));
    socket.on("end", () => {
      let request: { prompt: string; hint: string };
      try {
        const parsed = JSON.parse(Buffer.concat(chunks).toString("utf8")) as { prompt?: unknown; hint?: unknown };
        request = { prompt: String(parsed.prompt ?? ""), hint: String(parsed.hint ?? "") };
      } catch {
        socket.end("{}");
        return;
      }
      answer(request, options, rounds).then(
        (reply) => socket.end(JSON.stringify(reply === undefined ? {} : { answer: reply })),
        () => socket.end("{}"),
      );
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(socketPath, () => resolve());
  });
  let closed: Promise<void> | undefined;
  return {
    env: { SSH_ASKPASS: helper, SSH_ASKPASS_REQUIRE: "force", DISPLAY: process.env["DISPLAY"] ?? "tunnel:0" },
    close() {
      closed ??= new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      });
      return closed;
    },
  };
}
