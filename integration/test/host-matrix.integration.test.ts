/**
 * The host matrix: both transports × server/login-shell cells × the executor's capabilities, against real servers
 * (OpenSSH sshd with and without PAM and locked down, dropbear) and real login shells. With `TUNNEL_MATRIX_REPORT`
 * set to a file, every cell's outcome is written there; `scripts/matrix-table.mjs` turns it into the README's
 * compatibility table.
 */
import { mkdir, writeFile } from "node:fs/promises";
import { dirname } from "node:path";
import { afterAll, beforeAll, describe, it } from "vitest";
import { dropbearSupport, ensureShellAccounts, startDropbear, startSshd, type Dropbear, type LoginShell, type ShellUser, type Sshd } from "@tunnel-sh/testing";
import { cellFolders, runCheck, type CheckContext } from "./support/host-checks.js";
import { CELLS, checksOf, expectationOf, type Cell, type ServerKind } from "./support/host-matrix.js";
import { makeStack, TRANSPORTS, type Stack } from "./support/transports.js";

type Server = Sshd | Dropbear;

const servers = new Map<ServerKind, Promise<Server>>();
function server(kind: ServerKind): Promise<Server> {
  let started = servers.get(kind);
  if (!started) {
    if (kind === "dropbear") dropbearSupport();
    started =
      kind === "dropbear"
        ? startDropbear()
        : startSshd(kind === "openssh-pam" ? { usePam: true } : kind === "openssh-locked" ? { usePam: false, lockedDown: true } : { usePam: false });
    servers.set(kind, started);
  }
  return started;
}

let shellUsers: Promise<Readonly<Record<LoginShell, ShellUser>>> | undefined;

async function loginUser(cell: Cell, running: Server): Promise<string> {
  if (cell.shell === "bash") return running.users.sudo.name;
  shellUsers ??= ensureShellAccounts();
  return (await shellUsers)[cell.shell].name;
}

interface Outcome {
  transport: string;
  server: ServerKind;
  shell: string;
  full: boolean;
  check: string;
  expected: string;
  passed: boolean;
}
const outcomes: Outcome[] = [];

afterAll(async () => {
  await Promise.all([...servers.values()].map(async (started) => (await started.catch(() => undefined))?.stop()));
  const report = process.env.TUNNEL_MATRIX_REPORT;
  if (report) {
    await mkdir(dirname(report), { recursive: true });
    await writeFile(report, `${JSON.stringify(outcomes, null, 1)}\n`);
  }
});

describe.each(TRANSPORTS)("host matrix over %s", (transportName) => {
  describe.each(CELLS.map((cell) => [`${cell.server} × ${cell.shell}`, cell] as const))("%s", (_name, cell) => {
    let stack: Stack;
    let context: CheckContext;
    let cleanup: (() => Promise<void>) | undefined;

    beforeAll(async () => {
      const running = await server(cell.server);
      const user = await loginUser(cell, running);
      // A locked-down server allows one session per connection; the pool is told so, as a user would configure it.
      stack = makeStack(transportName, running, cell.server === "openssh-locked" ? { transport: { maxChannels: 1 } } : {});
      const target = { host: running.host, port: running.port, user };
      const folders = await cellFolders(stack.executor, target);
      cleanup = folders.cleanup;
      context = { executor: stack.executor, target, remoteDir: folders.remoteDir, localDir: folders.localDir };
    });

    afterAll(async () => {
      await cleanup?.();
      await stack?.close();
    });

    it.each(checksOf(cell).map((check) => [check, expectationOf(cell, check, transportName)] as const))("%s: %j", async (check, expectation) => {
      const outcome: Outcome = {
        transport: transportName,
        server: cell.server,
        shell: cell.shell,
        full: cell.full,
        check,
        expected:
          expectation === "works"
            ? "works"
            : "gap" in expectation
              ? `gap:${expectation.gap}`
              : `${expectation.failsWith}${expectation.reason ? `:${expectation.reason}` : ""}`,
        passed: false,
      };
      outcomes.push(outcome);
      await runCheck(check, expectation, context);
      outcome.passed = true;
    });
  });
});
