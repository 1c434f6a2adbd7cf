/**
 * The test accounts every throwaway sshd accepts, and the client key they trust.
 *
 * They are created once per machine and reused: several test processes (vitest workers, packages tested at the
 * same time) may ask for them at once, so all changes to users, passwords, authorized_keys and sudoers happen under
 * one `flock` on a root-only state folder. Passwords are random, made once per machine and kept in that folder.
 */
import { lstatSync, mkdirSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runLocal } from "./run-local.js";

export const TEST_USERS = {
  plain: "tunnel_plain",
  sudo: "tunnel_sudo",
  pwsudo: "tunnel_pwsudo",
  other: "tunnel_other",
} as const;

export interface TestAccounts {
  readonly users: { readonly [K in keyof typeof TEST_USERS]: { readonly name: string; readonly password: string } };
  readonly clientKeyPath: string;
}

// Runs under the lock. Arguments: state folder, then the user names (plain sudo pwsudo other).
// Idempotent: a second run changes nothing but re-applying the passwords.
const SETUP_SCRIPT = String.raw`
set -euo pipefail
umask 077
state=$1; plain=$2; sudo_user=$3; pwsudo=$4; other=$5
skel=$state/skel
mkdir -p "$skel" /run/sshd
chmod 755 /run/sshd
if [ ! -s "$state/passwords" ]; then
  for u in "$plain" "$sudo_user" "$pwsudo" "$other"; do
    printf '%s:%s\n' "$u" "$(head -c 24 /dev/urandom | base64 | tr -d '/+=')"
  done > "$state/passwords.new"
  mv "$state/passwords.new" "$state/passwords"
fi
if [ ! -s "$state/id_ed25519" ] || [ ! -s "$state/id_ed25519.pub" ]; then
  rm -f "$state/id_ed25519" "$state/id_ed25519.pub"
  ssh-keygen -q -t ed25519 -N '' -C tunnel-testing-client -f "$state/id_ed25519"
fi
pub=$(cut -d' ' -f1,2 "$state/id_ed25519.pub")
for u in "$plain" "$sudo_user" "$pwsudo" "$other"; do
  id -u "$u" >/dev/null 2>&1 || useradd -m -k "$skel" -s /bin/bash "$u"
  home=$(getent passwd "$u" | cut -d: -f6)
  group=$(id -gn "$u")
  install -d -m 700 -o "$u" -g "$group" "$home/.ssh"
  keys=$home/.ssh/authorized_keys
  [ -f "$keys" ] || install -m 600 -o "$u" -g "$group" /dev/null "$keys"
  grep -qF "$pub" "$keys" || printf '%s tunnel-testing-client\n' "$pub" >> "$keys"
  chown "$u:$group" "$keys"
  chmod 600 "$keys"
done
chpasswd < "$state/passwords"
write_sudoers() {
  # sudo skips files whose name holds a dot, so the temporary file is never read half-written.
  local name=$1 content=$2 file=/etc/sudoers.d/$1
  if [ -f "$file" ] && [ "$(cat "$file")" = "$content" ]; then return; fi
  printf '%s\n' "$content" > "/etc/sudoers.d/.$name.new"
  chmod 440 "/etc/sudoers.d/.$name.new"
  visudo -cqf "/etc/sudoers.d/.$name.new"
  mv "/etc/sudoers.d/.$name.new" "$file"
}
mkdir -p /etc/sudoers.d
write_sudoers "$sudo_user" "$sudo_user ALL=(ALL) NOPASSWD:ALL"
write_sudoers "$pwsudo" "Defaults:$pwsudo !lecture
$pwsudo ALL=(ALL) ALL"
`;

/** The root-only folder that holds the machine's test state (client key, passwords, lock). */
export function stateDirectory(): string {
  const dir = join(tmpdir(), "tunnel-testing-state");
  try {
    mkdirSync(dir, { mode: 0o700 });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
  }
  // Refuse a folder someone else prepared: it would hold the key every test account trusts.
  const stat = lstatSync(dir);
  if (!stat.isDirectory() || stat.uid !== 0 || (stat.mode & 0o077) !== 0) {
    throw new Error(`${dir} must be a directory owned by root with mode 0700; remove it and retry`);
  }
  return dir;
}

let accounts: Promise<TestAccounts> | undefined;

/** Create (or refresh) the test accounts. Once per process; safe to run from many processes at once. */
export function ensureTestAccounts(): Promise<TestAccounts> {
  accounts ??= setUp().catch((error: unknown) => {
    accounts = undefined;
    throw error;
  });
  return accounts;
}

async function setUp(): Promise<TestAccounts> {
  const state = stateDirectory();
  const result = await runLocal(
    "flock",
    [
      "-w",
      "120",
      join(state, "lock"),
      "bash",
      "-c",
      SETUP_SCRIPT,
      "tunnel-testing-setup",
      state,
      TEST_USERS.plain,
      TEST_USERS.sudo,
      TEST_USERS.pwsudo,
      TEST_USERS.other,
    ],
    { timeoutMs: 150_000 },
  );
  if (result.code !== 0) {
    throw new Error(`creating the test accounts failed (exit ${result.code}): ${result.stderr.trim()}`);
  }
  const passwords = new Map<string, string>();
  for (const line of readFileSync(join(state, "passwords"), "utf8").split("\n")) {
    const colon = line.indexOf(":");
    if (colon > 0) passwords.set(line.slice(0, colon), line.slice(colon + 1));
  }
  const user = (name: string) => {
    const password = passwords.get(name);
    if (password === undefined) throw new Error(`no password recorded for ${name}`);
    return { name, password };
  };
  return {
    users: {
      plain: user(TEST_USERS.plain),
      sudo: user(TEST_USERS.sudo),
      pwsudo: user(TEST_USERS.pwsudo),
      other: user(TEST_USERS.other),
    },
    clientKeyPath: join(state, "id_ed25519"),
  };
}
