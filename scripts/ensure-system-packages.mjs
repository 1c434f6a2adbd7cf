#!/usr/bin/env node
// The system packages tunnel's test suites use, in one list, and the step that makes sure they are there.
// `pnpm test` and `.ci/run` run this first. Run as root on Debian or Ubuntu, it installs whatever is missing
// (apt-get update, then apt-get install -y --no-install-recommends). Anywhere else it installs nothing: when a
// package is missing it exits 1 at once and prints the exact command to run.
// Usage: node scripts/ensure-system-packages.mjs
import { spawnSync } from "node:child_process";
import { accessSync, constants } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

/**
 * Each Debian package the suites use, with the programs that show it is installed. Add a package here when a suite
 * starts using it.
 */
export const SYSTEM_PACKAGES = [
  { name: "openssh-server", programs: ["/usr/sbin/sshd"], why: "the throwaway sshd of the real-server suites" },
  { name: "openssh-client", programs: ["ssh", "ssh-keygen", "ssh-keyscan", "scp", "sftp"], why: "the openssh transport; host and client keys" },
  { name: "sudo", programs: ["sudo", "visudo"], why: "commands and transfers run with sudo" },
  { name: "passwd", programs: ["useradd", "userdel", "chpasswd"], why: "the SSH test accounts" },
  { name: "util-linux", programs: ["flock", "setsid"], why: "the test accounts' lock; process groups" },
  { name: "procps", programs: ["ps", "pgrep"], why: "cancelling remote processes; leak checks" },
  { name: "iproute2", programs: ["ip", "ss"], why: "network namespaces of the fault suite; open-socket checks" },
  { name: "nftables", programs: ["nft"], why: "dropped SYNs and packet loss in the fault suite" },
  { name: "openssh-sftp-server", programs: ["/usr/lib/openssh/sftp-server"], why: "SFTP on dropbear" },
  { name: "fish", programs: ["fish"], why: "a fish login shell in the host matrix" },
  { name: "tcsh", programs: ["tcsh"], why: "a tcsh login shell in the host matrix" },
  { name: "mksh", programs: ["mksh"], why: "an mksh login shell in the host matrix" },
  { name: "zsh", programs: ["zsh"], why: "a zsh login shell in the host matrix" },
  { name: "busybox", programs: ["busybox"], why: "busybox ash and a busybox-only userland in the host matrix" },
  { name: "perl", programs: ["perl"], why: "the openssh transport's remote wrapper; the embedded server's shell" },
  { name: "python3", programs: ["python3"], why: "scripts run by interpreter" },
  { name: "dropbear-bin", programs: ["dropbear", "dropbearkey"], why: "the dropbear host suites" },
  { name: "redis-server", programs: ["redis-server"], why: "the redis-backed suites" },
];

/**
 * Where programs are looked for: the system's folders only, not PATH. The suites run them as the SSH test accounts,
 * whose PATH is the system's; a python3 of a version manager on root's PATH would not be found there.
 */
const SYSTEM_DIRS = ["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"];

function executable(path) {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** Whether `program` (a name, or an absolute path) is installed in the system's folders. */
export function installed(program) {
  if (program.startsWith("/")) return executable(program);
  return SYSTEM_DIRS.some((dir) => executable(join(dir, program)));
}

/** The packages of `SYSTEM_PACKAGES` with at least one program missing, each with only its missing programs. */
export function missingPackages(isInstalled = installed) {
  return SYSTEM_PACKAGES.map((pkg) => ({ ...pkg, programs: pkg.programs.filter((program) => !isInstalled(program)) })).filter((pkg) => pkg.programs.length > 0);
}

/** The apt-get invocations that install `names`, as argument lists. */
export function aptCommands(names) {
  return [
    ["apt-get", "update"],
    ["apt-get", "install", "-y", "--no-install-recommends", ...names],
  ];
}

const shellLine = (names) =>
  aptCommands(names)
    .map((args) => args.join(" "))
    .join(" && ");

/**
 * What to do about `missing` packages: nothing, install them (as root with apt-get), or stop with a message that
 * names the exact command to run.
 */
export function decide({ missing, root, apt, sudo = false }) {
  if (missing.length === 0) return { action: "none" };
  const names = missing.map((pkg) => pkg.name);
  if (root && apt) return { action: "install", names };
  const list = missing.map((pkg) => `  ${pkg.name} (${pkg.programs.join(", ")}): ${pkg.why}`).join("\n");
  const run = !apt
    ? `${shellLine(names)}   (as root on Debian or Ubuntu; elsewhere install the same packages with the system's package manager)`
    : sudo
      ? `sudo sh -c '${shellLine(names)}'`
      : `su root -c '${shellLine(names)}'`;
  return {
    action: "fail",
    message:
      `tunnel's tests need system packages that are not installed:\n${list}\n` +
      `Install them, then rerun \`pnpm test\`:\n  ${run}\n` +
      (root ? "" : "The real-server suites also need root: run `pnpm test` as root.\n"),
  };
}

function main() {
  const missing = missingPackages();
  const decision = decide({ missing, root: process.getuid?.() === 0, apt: installed("apt-get"), sudo: installed("sudo") });
  if (decision.action === "none") return 0;
  if (decision.action === "fail") {
    process.stderr.write(decision.message);
    return 1;
  }
  process.stdout.write(`system packages: installing ${decision.names.join(" ")}\n`);
  const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
  for (const [program, ...args] of aptCommands(decision.names)) {
    const run = spawnSync(program, ["-qq", ...args], { env, stdio: ["ignore", "inherit", "inherit"] });
    if (run.status !== 0) {
      process.stderr.write(`system packages: \`${[program, ...args].join(" ")}\` failed (exit ${run.status ?? run.signal})\n`);
      return 1;
    }
  }
  const still = missingPackages();
  if (still.length > 0) {
    process.stderr.write(`system packages: still missing after apt-get: ${still.map((pkg) => pkg.name).join(" ")}\n`);
    return 1;
  }
  return 0;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) process.exitCode = main();
