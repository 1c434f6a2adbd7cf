/**
 * The set-up transfer suites share: a real sshd, a stack over one transport, and a scratch folder on each side,
 * made before the describe block's tests and removed after them.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll } from "vitest";
import { startSshd, type Sshd } from "@tunnel-sh/testing";
import type { Target } from "@tunnel-sh/core";
import { makeStack, type Stack, type TransportName } from "./transports.js";

export interface ScratchServer {
  readonly sshd: Sshd;
  readonly stack: Stack;
  /** A local scratch folder. */
  readonly local: string;
  /** A folder on the server (`/tmp/<prefix>-remote-<transport>-<pid>`), empty at the start. */
  readonly remote: string;
  /** The server as its plain test user. */
  target(): Target;
}

/**
 * Call inside a `describe`: the returned object's fields are set once its `beforeAll` ran. `remoteFolder` is made
 * inside `remote` as well.
 */
export function scratchServer(transportName: TransportName, prefix: string, remoteFolder?: string): ScratchServer {
  const state: { sshd?: Sshd; stack?: Stack; local?: string; remote?: string } = {};
  const ready = <T>(value: T | undefined): T => {
    if (value === undefined) throw new Error("scratchServer: read before its beforeAll ran");
    return value;
  };
  const server: ScratchServer = {
    get sshd() {
      return ready(state.sshd);
    },
    get stack() {
      return ready(state.stack);
    },
    get local() {
      return ready(state.local);
    },
    get remote() {
      return ready(state.remote);
    },
    target: () => ({ host: server.sshd.host, port: server.sshd.port, user: server.sshd.users.plain.name }),
  };
  beforeAll(async () => {
    state.sshd = await startSshd();
    state.stack = makeStack(transportName, state.sshd);
    state.local = await mkdtemp(join(tmpdir(), `${prefix}-local-`));
    state.remote = `/tmp/${prefix}-remote-${transportName}-${process.pid}`;
    const folder = remoteFolder === undefined ? state.remote : `${state.remote}/${remoteFolder}`;
    await state.stack.executor.runCommand({ ...server.target(), cmd: `rm -rf ${state.remote} && mkdir -p ${folder}` });
  });
  afterAll(async () => {
    if (state.remote !== undefined) await state.stack?.executor.runCommand({ ...server.target(), cmd: `rm -rf ${state.remote}` }).catch(() => undefined);
    await state.stack?.close();
    await state.sshd?.stop();
    if (state.local !== undefined) await rm(state.local, { recursive: true, force: true });
  });
  return server;
}
