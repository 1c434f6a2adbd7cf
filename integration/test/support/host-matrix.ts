/**
 * The host matrix: which servers and login shells are tested, and what each cell is expected to do.
 *
 * Cells that differ in kind (a POSIX shell on OpenSSH, fish, tcsh, a busybox-only userland, dropbear, a locked-down
 * sshd) run every check; the other shells and the PAM variant run a representative subset, to keep CI in its
 * budget. A check a cell cannot do is listed with the typed error it must fail with.
 */
import type { CheckName, Expectation } from "./host-checks.js";

export type ServerKind = "openssh" | "openssh-pam" | "openssh-locked" | "dropbear";

/** A login account: one of the shell accounts, or `bash` (the sudo test user, whose shell is bash). */
export type ShellKind = "bash" | "dash" | "zsh" | "mksh" | "fish" | "tcsh" | "ash" | "busybox";

export interface Cell {
  readonly server: ServerKind;
  readonly shell: ShellKind;
  /** Every check (`full`), or the subset. */
  readonly full: boolean;
  /** Checks whose expectation is not "works", over both transports. */
  readonly exceptions?: Partial<Record<CheckName, Expectation>>;
  /** Checks whose expectation is not "works" over one transport. */
  readonly byTransport?: Partial<Record<"ssh2" | "openssh", Partial<Record<CheckName, Expectation>>>>;
}

export const ALL_CHECKS: readonly CheckName[] = [
  "command-env",
  "hostile-env",
  "working-dir-quoted",
  "working-dir-missing",
  "exit-code",
  "signal",
  "stdin",
  "pty",
  "shell-option",
  "script-bash-args",
  "script-shebang",
  "sudo-root-env",
  "sudo-other-user",
  "timeout",
  "abort",
  "timeout-compound",
  "timeout-sudo",
  "transfer-verify-mode",
  "transfer-owner-sudo",
  "transfer-tree",
];

/** The subset for cells that do not differ in kind from a full one. */
export const SUBSET_CHECKS: readonly CheckName[] = [
  "command-env",
  "hostile-env",
  "working-dir-quoted",
  "working-dir-missing",
  "signal",
  "script-bash-args",
  "sudo-root-env",
  "timeout-compound",
  "transfer-verify-mode",
];

export const CELLS: readonly Cell[] = [
  { server: "openssh", shell: "bash", full: true },
  { server: "openssh", shell: "dash", full: false },
  { server: "openssh", shell: "zsh", full: false },
  { server: "openssh", shell: "mksh", full: false },
  { server: "openssh", shell: "fish", full: true },
  { server: "openssh", shell: "tcsh", full: true },
  { server: "openssh", shell: "ash", full: false },
  {
    server: "openssh",
    shell: "busybox",
    full: true,
    // No bash in a busybox userland: asking for it is a typed error naming the field, before anything runs.
    exceptions: {
      "shell-option": { failsWith: "VALIDATION" },
      "script-bash-args": { failsWith: "VALIDATION" },
    },
  },
  { server: "openssh-pam", shell: "bash", full: false },
  {
    server: "openssh-locked",
    shell: "bash",
    full: true,
    exceptions: {
      pty: { failsWith: "UNSUPPORTED_HOST", reason: "pty" },
    },
  },
  { server: "dropbear", shell: "bash", full: true },
  { server: "dropbear", shell: "fish", full: false },
  { server: "dropbear", shell: "busybox", full: false, exceptions: { "script-bash-args": { failsWith: "VALIDATION" } } },
];

export function checksOf(cell: Cell): readonly CheckName[] {
  return cell.full ? ALL_CHECKS : SUBSET_CHECKS;
}

export function expectationOf(cell: Cell, check: CheckName, transport: "ssh2" | "openssh"): Expectation {
  return cell.byTransport?.[transport]?.[check] ?? cell.exceptions?.[check] ?? "works";
}
