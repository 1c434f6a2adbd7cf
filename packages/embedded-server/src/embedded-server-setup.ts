/** Setting up an embedded server: keys, users, the session helper, and the folders of earlier test processes. */
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { accessSync, constants as fsConstants } from "node:fs";
import { readdir, rm } from "node:fs/promises";
import { tmpdir, userInfo } from "node:os";
import { join } from "node:path";
import ssh2 from "ssh2";
import type { SessionHelper } from "./embedded-server-session.js";
import type { ResolvedTestServerUser, TestServerOptions } from "./test-server.js";
import { TestServerOptionError } from "./test-server-options.js";

export const DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

export const INSTANCE_PREFIX = "tunnel-test-server-";
let staleSweep: Promise<void> | undefined;

/** `sweepStaleFolders`, once per process; its failure is not the caller's. */
export function sweepStaleFoldersOnce(): Promise<void> {
  return (staleSweep ??= sweepStaleFolders().catch(() => {}));
}

/** Remove the key folders of test processes that died without `close()` (their pid is in the folder's name). */
async function sweepStaleFolders(): Promise<void> {
  for (const name of await readdir(tmpdir())) {
    const owner = new RegExp(`^${INSTANCE_PREFIX}(\\d+)-`).exec(name);
    if (!owner || Number(owner[1]) === process.pid || processExists(Number(owner[1]))) continue;
    await rm(join(tmpdir(), name), { recursive: true, force: true });
  }
}

function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

/**
 * An ed25519 key pair in OpenSSH format. ssh2's generator drops a leading zero byte of the public key (about one key
 * in 256), which makes a key nobody can load: such a pair is thrown away.
 */
export function generateEd25519(comment: string): { private: string; public: string } {
  for (let attempt = 0; attempt < 20; attempt++) {
    const pair = ssh2.utils.generateKeyPairSync("ed25519", { comment });
    const parsedPrivate = ssh2.utils.parseKey(pair.private);
    const parsedPublic = ssh2.utils.parseKey(pair.public);
    // string "ssh-ed25519" (4 + 11) + string key (4 + 32)
    if (!(parsedPrivate instanceof Error) && !(parsedPublic instanceof Error) && parsedPublic.getPublicSSH().length === 51) {
      return pair;
    }
  }
  throw new Error("could not generate a valid ed25519 key");
}

let detected: Promise<SessionHelper> | undefined;
let perl: Promise<boolean> | undefined;

/** The session helper `"auto"` stands for: perl where it runs with POSIX, else node. Found once per process. */
export function detectSessionHelper(): Promise<SessionHelper> {
  return (detected ??= perlWorks().then((works) => (works ? "perl" : "node")));
}

/** Whether perl with POSIX runs here. Checked once per process. */
export function perlWorks(): Promise<boolean> {
  return (perl ??= checkPerl());
}

function checkPerl(): Promise<boolean> {
  return new Promise((resolve) => {
    // An explicit environment: the check needs PATH only, and nothing else of this process's environment is perl's.
    const env = { PATH: process.env["PATH"] ?? DEFAULT_PATH };
    execFile("perl", ["-MPOSIX", "-e", "print 1"], { timeout: 10_000, killSignal: "SIGKILL", env }, (error, stdout) => {
      resolve(error === null && stdout === "1");
    });
  });
}

export function resolveUsers(users: TestServerOptions["users"], clientPublicKey: string): ResolvedTestServerUser[] {
  const list = users ?? [{ name: userInfo().username, password: randomBytes(12).toString("base64url") }];
  if (list.length === 0) throw new TestServerOptionError("users", "the test server needs at least one user");
  return list.map((user, index) => {
    const publicKeys = user.publicKeys ?? [clientPublicKey];
    for (const key of publicKeys) {
      if (ssh2.utils.parseKey(key) instanceof Error) {
        throw new TestServerOptionError(`users[${index}].publicKeys`, `user ${user.name}: not a public key: ${key}`);
      }
    }
    return { name: user.name, password: user.password, publicKeys };
  });
}

export function onPath(tool: string): boolean {
  return (process.env["PATH"] ?? DEFAULT_PATH).split(":").some((folder) => {
    try {
      accessSync(join(folder || ".", tool), fsConstants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}
