// Proves the dependency check can fail: a fixture workspace whose built dist/ and manifests disagree must be
// rejected, naming every mismatch, and a fixture whose manifests declare exactly what dist/ imports must pass.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { join } from "node:path";

const here = fileURLToPath(new URL(".", import.meta.url));
const check = (fixture) => spawnSync(process.execPath, [join(here, "..", "check-dependencies.mjs"), join(here, "fixtures", fixture)], { encoding: "utf8" });

test("a runtime dependency dist/ never imports, and an import no manifest declares, are rejected", () => {
  const run = check("deps-violation");
  assert.equal(run.status, 1);
  assert.match(run.stderr, /transport-ssh2\/package.json: "ssh2-sftp-client" is a runtime dependency but dist\/ never imports it/);
  assert.match(run.stderr, /pool\/package.json: "@tunnel-sh\/core" is a runtime dependency but dist\/ never imports it/);
  // A dynamic import counts as an import.
  assert.match(run.stderr, /transport-ssh2\/dist\/index.js: imports "ssh-config", which is not a dependency or peerDependency/);
  // A subpath import is an import of its package: "ssh2/lib/client.js" needs nothing beyond "ssh2".
  assert.doesNotMatch(run.stderr, /imports "ssh2\//);
  assert.doesNotMatch(run.stderr, /"fs"/);
  assert.equal(run.stderr.match(/violation\(s\)/g)?.length, 1);
  assert.match(run.stderr, /dependencies: 8 violation\(s\)/);
});

test("types that need an @types package only in devDependencies, or an undeclared package, are rejected", () => {
  const run = check("deps-violation");
  assert.match(run.stderr, /transport-ssh2\/dist\/index.d.ts: its types import "ssh2", whose types come from @types\/ssh2, only a devDependency/);
  assert.match(run.stderr, /cli\/dist\/index.d.ts: its types import "@tunnel-sh\/tracer-otel", which is not a dependency or peerDependency/);
  assert.match(run.stderr, /cli\/package.json: @types\/cli-progress is a runtime dependency but dist\/\*.d.ts imports nothing it types/);
  assert.match(run.stderr, /cli\/package.json: "@tunnel-sh\/core" is a runtime dependency but dist\/ never imports it/);
});

test("a package without a build is reported rather than passed", () => {
  const run = check("deps-violation");
  assert.match(run.stderr, /packages\/tracer-otel: no dist\/ to check; run pnpm build first/);
});

test("a workspace whose manifests declare exactly what dist/ imports passes; comments, strings and private packages are not counted", () => {
  const run = check("deps-clean");
  assert.equal(run.status, 0, run.stderr);
  assert.match(run.stdout, /dependencies: 3 packages checked/);
});
