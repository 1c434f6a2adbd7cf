#!/usr/bin/env node
/**
 * The `tunnel` executable. Ctrl-C (SIGINT) or SIGTERM cancels every running operation — the remote processes are
 * stopped — and tunnel exits with 130 (143 for SIGTERM); a second Ctrl-C exits at once.
 */
import { runCli } from "./cli.js";
import { ExitCode } from "./output.js";
import { takeSecretVariables } from "./secret-variables.js";

// First of all: the password variable leaves this process's environment, so no child process inherits it.
const env = takeSecretVariables(process.argv.slice(2), process.env);

const interrupt = new AbortController();
let received: NodeJS.Signals | undefined;
const onSignal = (signal: NodeJS.Signals) => {
  if (received !== undefined) {
    process.stderr.write("tunnel: interrupted again; exiting without waiting for clean-up\n");
    process.exit(128 + (signal === "SIGTERM" ? 15 : 2));
  }
  received = signal;
  interrupt.abort();
};
process.on("SIGINT", onSignal);
process.on("SIGTERM", onSignal);
// The reader of our output went away (`tunnel run ... | head`): stop the remote work as on Ctrl-C.
const onOutputError = (error: NodeJS.ErrnoException) => {
  if (error.code !== "EPIPE") throw error;
  if (received === undefined) {
    received = "SIGPIPE";
    interrupt.abort();
  }
};
process.stdout.on("error", onOutputError);
process.stderr.on("error", onOutputError);

const status = await runCli(process.argv.slice(2), {
  stdout: process.stdout,
  stderr: process.stderr,
  stdin: process.stdin,
  env,
  interrupt: interrupt.signal,
});
const signalStatus: Partial<Record<NodeJS.Signals, number>> = { SIGTERM: ExitCode.TERMINATED, SIGPIPE: ExitCode.OUTPUT_CLOSED };
process.exitCode = status === ExitCode.INTERRUPTED && received !== undefined ? (signalStatus[received] ?? status) : status;
// Everything is closed by now; should a handle linger anyway, do not hang the shell.
setTimeout(() => process.exit(), 2_000).unref();
