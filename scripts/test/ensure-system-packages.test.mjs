// The system-package step of `pnpm test`: what it finds missing, and what it does about it where it can install
// (root with apt-get) and where it cannot (it stops at once, naming the exact command).
import { test } from "node:test";
import assert from "node:assert/strict";
import { SYSTEM_PACKAGES, aptCommands, decide, missingPackages } from "../ensure-system-packages.mjs";

const absent = new Set(["/usr/sbin/sshd", "nft"]);
const missing = missingPackages((program) => !absent.has(program));

test("a package counts as missing when one of its programs is, and names only the missing programs", () => {
  assert.deepEqual(
    missing.map((pkg) => [pkg.name, pkg.programs]),
    [
      ["openssh-server", ["/usr/sbin/sshd"]],
      ["nftables", ["nft"]],
    ],
  );
  assert.deepEqual(
    missingPackages(() => true),
    [],
  );
});

test("every package the suites use is in the one list", () => {
  const names = SYSTEM_PACKAGES.map((pkg) => pkg.name);
  for (const name of [
    "openssh-server",
    "openssh-client",
    "sudo",
    "nftables",
    "iproute2",
    "procps",
    "passwd",
    "perl",
    "dropbear-bin",
    "fish",
    "tcsh",
    "mksh",
    "zsh",
    "busybox",
    "redis-server",
  ]) {
    assert.ok(names.includes(name), `${name} is missing from SYSTEM_PACKAGES`);
  }
  assert.equal(new Set(names).size, names.length);
});

test("nothing missing: nothing to do, whoever runs it", () => {
  assert.deepEqual(decide({ missing: [], root: false, apt: false }), { action: "none" });
});

test("as root with apt-get: installs the missing packages, without recommends, after an update", () => {
  assert.deepEqual(decide({ missing, root: true, apt: true }), { action: "install", names: ["openssh-server", "nftables"] });
  assert.deepEqual(aptCommands(["openssh-server", "nftables"]), [
    ["apt-get", "update"],
    ["apt-get", "install", "-y", "--no-install-recommends", "openssh-server", "nftables"],
  ]);
});

test("not root: stops, naming each missing program and the exact command to run", () => {
  const decision = decide({ missing, root: false, apt: true, sudo: true });
  assert.equal(decision.action, "fail");
  assert.match(decision.message, /openssh-server \(\/usr\/sbin\/sshd\)/);
  assert.match(decision.message, /nftables \(nft\)/);
  assert.ok(decision.message.includes("sudo sh -c 'apt-get update && apt-get install -y --no-install-recommends openssh-server nftables'"), decision.message);
  assert.match(decision.message, /need root/);
  assert.ok(decide({ missing, root: false, apt: true, sudo: false }).message.includes("su root -c 'apt-get update && apt-get install"));
});

test("without apt-get: stops, naming the Debian packages and the command, and installs nothing", () => {
  const decision = decide({ missing, root: true, apt: false });
  assert.equal(decision.action, "fail");
  assert.ok(decision.message.includes("apt-get update && apt-get install -y --no-install-recommends openssh-server nftables"), decision.message);
  assert.match(decision.message, /system's package manager/);
  assert.doesNotMatch(decision.message, /need root/);
});
