// The workspace's packages are ready to publish (`pnpm check` runs this file), and the check behind that can fail:
// a fixture workspace with a package that was never prepared for publishing, and a private package left alone.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { cpSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const here = fileURLToPath(new URL(".", import.meta.url));
const fixture = join(here, "fixtures", "metadata");
const run = (mode, root) => spawnSync(process.execPath, [join(here, "..", "package-metadata.mjs"), mode, root], { encoding: "utf8" });
const workspace = fileURLToPath(new URL("../..", import.meta.url));
const manifest = (root, folder) => JSON.parse(readFileSync(join(root, "packages", folder, "package.json"), "utf8"));

test("every package of this workspace is ready to publish", () => {
  const result = run("--check", workspace);
  assert.equal(result.status, 0, result.stderr);
  assert.match(result.stdout, /every package is ready to publish/);
});

test("a package without publishing metadata is rejected, every missing field named", () => {
  const result = run("--check", fixture);
  assert.equal(result.status, 1);
  assert.match(result.stderr, /packages\/widget\/LICENSE: missing/);
  const line = result.stderr.split("\n").find((text) => text.includes("packages/widget/package.json")) ?? "";
  for (const field of ["keywords", "homepage", "bugs", "repository", "license", "author", "engines", "files", "publishConfig", "peerDependencies"]) {
    assert.match(line, new RegExp(`\\b${field}\\b`), `${field} is named`);
  }
  assert.match(result.stderr, /- package\.json: engines differ/);
  assert.doesNotMatch(result.stderr, /internal/);
});

test("--write prepares every publishable package, after which --check passes", (t) => {
  const root = mkdtempSync(join(tmpdir(), "tunnel-metadata-"));
  t.after(() => rmSync(root, { recursive: true, force: true }));
  cpSync(fixture, root, { recursive: true });
  const privateBefore = readFileSync(join(root, "packages", "internal", "package.json"), "utf8");

  const write = run("--write", root);
  assert.equal(write.status, 0, write.stderr);
  const check = run("--check", root);
  assert.equal(check.status, 0, check.stderr);

  const widget = manifest(root, "widget");
  assert.deepEqual(widget.repository, { type: "git", url: "git+https://github.com/tunnel-sh/tunnel.git", directory: "packages/widget" });
  assert.equal(widget.homepage, "https://github.com/tunnel-sh/tunnel/tree/main/packages/widget#readme");
  assert.deepEqual(widget.bugs, { url: "https://github.com/tunnel-sh/tunnel/issues" });
  assert.deepEqual(widget.publishConfig, { access: "public", provenance: true });
  assert.equal(widget.license, "MIT");
  assert.deepEqual(widget.engines, { node: ">=20.19" });
  assert.deepEqual(widget.files, ["dist", "README.md", "LICENSE"]);
  assert.deepEqual(widget.keywords, ["tunnel", "ssh"]);
  assert.equal(widget.peerDependencies["@tunnel-sh/core"], "workspace:>=0.0.0 <1.0.0");
  assert.deepEqual(Object.keys(widget).slice(0, 10), [
    "name",
    "version",
    "description",
    "keywords",
    "homepage",
    "bugs",
    "repository",
    "license",
    "author",
    "type",
  ]);
  assert.equal(readFileSync(join(root, "packages", "widget", "LICENSE"), "utf8"), readFileSync(join(root, "LICENSE"), "utf8"));
  assert.equal(JSON.parse(readFileSync(join(root, "package.json"), "utf8")).engines.node, ">=20.19");
  assert.equal(readFileSync(join(root, "packages", "internal", "package.json"), "utf8"), privateBefore);

  const again = run("--write", root);
  assert.equal(again.status, 0, again.stderr);
  assert.deepEqual(manifest(root, "widget"), widget, "a second --write changes nothing");
});
