// Runs `changeset version` on a throwaway copy of the workspace's manifests and changesets, the way a release would:
// the pending changesets must release every publishable package at 0.1.0, and a later core minor must leave the
// packages that peer-depend on core at their version (a peer range that core leaves would major-bump them).
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("../..", import.meta.url));
const changesetBin = join(root, "node_modules", "@changesets", "cli", "bin.js");

/** Every workspace manifest (packages/*, integration, bench), as paths relative to the root. */
function workspaceManifests() {
  const folders = readdirSync(join(root, "packages")).map((folder) => join("packages", folder));
  return [...folders, "integration", "bench"].map((folder) => join(folder, "package.json")).filter((path) => existsSync(join(root, path)));
}

function copyWorkspace() {
  const copy = mkdtempSync(join(tmpdir(), "tunnel-release-plan-"));
  for (const file of ["package.json", "pnpm-workspace.yaml", ...workspaceManifests()]) {
    mkdirSync(dirname(join(copy, file)), { recursive: true });
    cpSync(join(root, file), join(copy, file));
  }
  cpSync(join(root, ".changeset"), join(copy, ".changeset"), { recursive: true });
  // The changelog generator named in .changeset/config.json is resolved from the copy.
  symlinkSync(join(root, "node_modules"), join(copy, "node_modules"), "dir");
  return copy;
}

function version(copy) {
  const run = spawnSync(process.execPath, [changesetBin, "version"], { cwd: copy, encoding: "utf8" });
  const output = run.stdout + run.stderr;
  assert.equal(run.status, 0, output);
  assert.doesNotMatch(output, /must depend on the current version/, "every internal range holds the current version");
  return output;
}

function manifests(copy) {
  return workspaceManifests().map((path) => JSON.parse(readFileSync(join(copy, path), "utf8")));
}

test("the pending changesets release every publishable package at 0.1.0, and a later core minor majors nothing", (t) => {
  const copy = copyWorkspace();
  t.after(() => rmSync(copy, { recursive: true, force: true }));

  version(copy);
  const first = manifests(copy).filter((manifest) => manifest.private !== true);
  assert.ok(first.length >= 8, "every package is in the plan");
  for (const manifest of first) {
    assert.equal(manifest.version, "0.1.0", `${manifest.name} is released at 0.1.0 (add a changeset for it if it is at 0.0.0)`);
  }
  const peers = first.filter((manifest) => manifest.peerDependencies?.["@tunnel-sh/core"]);
  assert.ok(peers.length >= 6, "the adapters peer-depend on core");

  writeFileSync(join(copy, ".changeset", "core-next-minor.md"), '---\n"@tunnel-sh/core": minor\n---\nA new core feature.\n');
  version(copy);
  const next = new Map(manifests(copy).map((manifest) => [manifest.name, manifest]));
  assert.equal(next.get("@tunnel-sh/core").version, "0.2.0");
  for (const { name } of peers) {
    const manifest = next.get(name);
    assert.equal(manifest.version, "0.1.0", `${name} keeps its version when core releases a minor`);
    assert.equal(manifest.peerDependencies["@tunnel-sh/core"], "workspace:>=0.0.0 <1.0.0", `${name}'s peer range still admits core 0.2.0`);
  }
  for (const manifest of next.values()) {
    assert.ok(!/^[1-9]/.test(manifest.version), `${manifest.name} stays below 1.0.0 (is ${manifest.version})`);
  }
});
