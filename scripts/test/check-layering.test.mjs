// Proves the layering check can fail: a fixture workspace that breaks each rule must be rejected,
// naming every violation, and a clean fixture must pass.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { join } from "node:path";

const here = fileURLToPath(new URL(".", import.meta.url));
const check = (fixture) => spawnSync(process.execPath, [join(here, "..", "check-layering.mjs"), join(here, "fixtures", fixture)], { encoding: "utf8" });

test("a workspace that breaks the package graph is rejected with every violation named", () => {
  const run = check("violation");
  assert.equal(run.status, 1);
  assert.match(run.stderr, /@tunnel-sh\/core has no runtime dependencies but imports "ssh2"/);
  assert.match(run.stderr, /core must have no runtime dependencies/);
  assert.match(run.stderr, /imports "@tunnel-sh\/core\/src\/quote.js"; use the public entry point "@tunnel-sh\/core"/);
  // A subpath that the package's exports map does not offer is refused; the ones it offers are named.
  assert.match(run.stderr, /imports "@tunnel-sh\/core\/private"; use the public entry point "@tunnel-sh\/core" \(or @tunnel-sh\/core\/internal\)/);
  assert.match(run.stderr, /@tunnel-sh\/pool must not import @tunnel-sh\/transport-ssh2/);
  assert.match(run.stderr, /relative import "..\/..\/core\/src\/errors.js" leaves the package/);
});

test("a workspace that follows the package graph passes, subpaths of an exports map included", () => {
  const run = check("clean");
  assert.equal(run.status, 0, run.stderr);
  assert.match(run.stdout, /no violations/);
});
