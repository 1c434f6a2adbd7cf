/**
 * Test accounts whose login shell is not bash: one per common login shell, and one whose whole userland is busybox.
 *
 * Like the basic accounts (`test-users.ts`) they are created once per machine under the same `flock`, trust the same
 * client key, and keep random passwords in the root-only state folder. Each has passwordless sudo (the matrix runs
 * sudo cases as every user). The shells come from Debian packages (`zsh fish tcsh mksh busybox`; dash is Debian's
 * `/bin/sh`); busybox ash is a link named `ash` to busybox, which dispatches on its name. The busybox-only account's
 * login shell is a small script that sets `PATH` to a folder of busybox applet links (plus `sudo`) and execs busybox
 * ash: no perl, no GNU find/stat/coreutils, as on Alpine containers and OpenWrt. Every shell is listed in
 * `/etc/shells` (dropbear refuses others).
 */
import { accessSync, constants, readFileSync } from "node:fs";
import { join } from "node:path";
import { runLocal } from "./run-local.js";
import { ensureTestAccounts, stateDirectory } from "./test-users.js";

/** The login shells the host matrix covers besides bash. */
export type LoginShell = "dash" | "zsh" | "mksh" | "fish" | "tcsh" | "ash" | "busybox";

export const LOGIN_SHELLS: readonly LoginShell[] = ["dash", "zsh", "mksh", "fish", "tcsh", "ash", "busybox"];

export interface ShellUser {
  readonly name: string;
  readonly password: string;
  /** The account's login shell (an absolute path, listed in /etc/shells). */
  readonly shell: string;
}

/** Where the busybox links and the busybox-only login shell live. */
export const BUSYBOX_ROOT = "/opt/tunnel-testing";
/** The only folder on the busybox-only account's PATH. */
export const BUSYBOX_PATH = `${BUSYBOX_ROOT}/busybox-bin`;

/** Account name for a login shell, e.g. `tunnel_fish`. */
export function shellUserName(shell: LoginShell): string {
  return `tunnel_${shell}`;
}

/** Debian packages the shells come from, and the program each must provide. */
const SHELL_PROGRAMS: Readonly<Record<LoginShell, readonly [string, string]>> = {
  dash: ["dash", "dash"],
  zsh: ["zsh", "zsh"],
  mksh: ["mksh", "mksh"],
  fish: ["fish", "fish"],
  tcsh: ["tcsh", "tcsh"],
  ash: ["busybox", "busybox"],
  busybox: ["busybox", "busybox"],
};

// Runs under the lock. Arguments: state folder, busybox root, then `user:program` pairs (program: a shell's name,
// or `ash` / `busybox-only`). Idempotent.
const SETUP_SCRIPT = String.raw`
set -euo pipefail
umask 022
state=$1; root=$2; shift 2
skel=$state/skel
bb=$(command -v busybox)
mkdir -p "$root" "$root/busybox-bin"
ln -sfn "$bb" "$root/ash"
for applet in $("$bb" --list); do
  [ -e "$root/busybox-bin/$applet" ] || ln -s "$bb" "$root/busybox-bin/$applet"
done
ln -sfn "$(command -v sudo)" "$root/busybox-bin/sudo"
cat > "$root/busybox-login.new" <<LOGIN
#!/bin/sh
PATH=$root/busybox-bin
export PATH
exec $root/ash "\$@"
LOGIN
chmod 755 "$root/busybox-login.new"
mv "$root/busybox-login.new" "$root/busybox-login"
umask 077
touch "$state/shell-passwords"
for pair in "$@"; do
  u=$(printf '%s' "$pair" | cut -d: -f1); program=$(printf '%s' "$pair" | cut -d: -f2)
  case $program in
    ash) shell=$root/ash ;;
    busybox-only) shell=$root/busybox-login ;;
    *) shell=$(command -v "$program") ;;
  esac
  grep -qxF "$shell" /etc/shells || printf '%s\n' "$shell" >> /etc/shells
  if id -u "$u" >/dev/null 2>&1; then
    [ "$(getent passwd "$u" | cut -d: -f7)" = "$shell" ] || usermod -s "$shell" "$u"
  else
    useradd -m -k "$skel" -s "$shell" "$u"
  fi
  grep -q "^$u:" "$state/shell-passwords" ||
    printf '%s:%s\n' "$u" "$(head -c 24 /dev/urandom | base64 | tr -d '/+=')" >> "$state/shell-passwords"
  home=$(getent passwd "$u" | cut -d: -f6)
  group=$(id -gn "$u")
  install -d -m 700 -o "$u" -g "$group" "$home/.ssh"
  install -m 600 -o "$u" -g "$group" "$state/id_ed25519.pub" "$home/.ssh/authorized_keys"
  file=/etc/sudoers.d/$u
  content="$u ALL=(ALL) NOPASSWD:ALL"
  if [ ! -f "$file" ] || [ "$(cat "$file")" != "$content" ]; then
    printf '%s\n' "$content" > "/etc/sudoers.d/.$u.new"
    chmod 440 "/etc/sudoers.d/.$u.new"
    visudo -cqf "/etc/sudoers.d/.$u.new"
    mv "/etc/sudoers.d/.$u.new" "$file"
  fi
done
chpasswd < "$state/shell-passwords"
`;

/** Programs missing for the shell accounts, as `program (Debian package)`. */
export function missingShellPrograms(): string[] {
  const dirs = (process.env.PATH ?? "").split(":").concat(["/usr/bin", "/bin"]);
  const missing = new Set<string>();
  for (const [program, from] of Object.values(SHELL_PROGRAMS)) {
    const found = dirs.some((dir) => {
      try {
        accessSync(join(dir, program), constants.X_OK);
        return dir !== "";
      } catch {
        return false;
      }
    });
    if (!found) missing.add(`${program} (${from})`);
  }
  return [...missing];
}

let accounts: Promise<Readonly<Record<LoginShell, ShellUser>>> | undefined;

/**
 * Create (or refresh) one account per login shell. Once per process; safe from many processes at once.
 * Rejects when a shell is missing — under `CI` as everywhere: a matrix cell must fail, not skip.
 */
export function ensureShellAccounts(): Promise<Readonly<Record<LoginShell, ShellUser>>> {
  accounts ??= setUp().catch((error: unknown) => {
    accounts = undefined;
    throw error;
  });
  return accounts;
}

async function setUp(): Promise<Readonly<Record<LoginShell, ShellUser>>> {
  const missing = missingShellPrograms();
  if (missing.length > 0) throw new Error(`the login-shell accounts need ${missing.join(", ")}`);
  await ensureTestAccounts();
  const state = stateDirectory();
  const pairs = LOGIN_SHELLS.map((shell) => `${shellUserName(shell)}:${shell === "busybox" ? "busybox-only" : shell}`);
  const result = await runLocal(
    "flock",
    ["-w", "120", join(state, "lock"), "bash", "-c", SETUP_SCRIPT, "tunnel-testing-shells", state, BUSYBOX_ROOT, ...pairs],
    { timeoutMs: 150_000 },
  );
  if (result.code !== 0) throw new Error(`creating the login-shell accounts failed (exit ${result.code}): ${result.stderr.trim()}`);
  const passwords = new Map<string, string>();
  for (const line of readFileSync(join(state, "shell-passwords"), "utf8").split("\n")) {
    const colon = line.indexOf(":");
    if (colon > 0) passwords.set(line.slice(0, colon), line.slice(colon + 1));
  }
  const shells = new Map<string, string>();
  for (const line of readFileSync("/etc/passwd", "utf8").split("\n")) {
    const fields = line.split(":");
    if (fields[0] && fields[6]) shells.set(fields[0], fields[6]);
  }
  const users = {} as Record<LoginShell, ShellUser>;
  for (const shell of LOGIN_SHELLS) {
    const name = shellUserName(shell);
    const password = passwords.get(name);
    const loginShell = shells.get(name);
    if (password === undefined || loginShell === undefined) throw new Error(`the account ${name} was not set up`);
    users[shell] = { name, password, shell: loginShell };
  }
  return users;
}
