#!/usr/bin/env node
// The publishing metadata of every publishable package (packages/*/package.json without `"private": true`):
// license and author, repository / homepage / bugs, the common keywords, publishConfig (public, with provenance),
// engines.node, LICENSE in `files` and a LICENSE file equal to the root one, and the peer range on @tunnel-sh/core.
// The workspace root's engines.node is held to the same minimum.
// Usage: node scripts/package-metadata.mjs --write|--check [workspace root]
//   --write sets every field (a package added later is covered by running it again) and copies LICENSE;
//   --check changes nothing, lists every difference and exits 1 when there is one.
import { copyFileSync, existsSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";

export const REPOSITORY_URL = "git+https://github.com/tunnel-sh/tunnel.git";
export const NODE_RANGE = ">=20.19";
/**
 * Adapters peer-depend on any 0.x core. With `workspace:^` the published range would be `^0.0.0` (0.0.0 only), and
 * changesets would major-bump every adapter on each core minor; this range stays satisfied by every 0.x release of
 * core, so a core minor leaves the adapters alone. pnpm publishes it without the `workspace:` prefix.
 */
export const CORE_PEER_RANGE = "workspace:>=0.0.0 <1.0.0";
const COMMON_KEYWORDS = ["tunnel", "ssh"];
const AUTHOR = "The tunnel authors";
/** Where a field that a manifest lacks goes: right after this one (or at the end). */
const PLACE_AFTER = {
  keywords: "description",
  homepage: "keywords",
  bugs: "homepage",
  repository: "bugs",
  license: "repository",
  author: "license",
  engines: "sideEffects",
  publishConfig: "files",
};

function withFields(manifest, fields) {
  // Placed fields always go to their place, so every manifest lists them in the same order.
  const placed = (key) => key in fields && key in PLACE_AFTER;
  const entries = Object.entries(manifest)
    .filter(([key]) => !placed(key))
    .map(([key, value]) => [key, key in fields ? fields[key] : value]);
  for (const [key, value] of Object.entries(fields)) {
    if (key in manifest && !placed(key)) continue;
    const at = entries.findIndex(([existing]) => existing === PLACE_AFTER[key]);
    entries.splice(at === -1 ? entries.length : at + 1, 0, [key, value]);
  }
  return Object.fromEntries(entries);
}

function packageFields(manifest, folder) {
  const files = manifest.files ?? [];
  const fields = {
    keywords: [...new Set([...COMMON_KEYWORDS, ...(manifest.keywords ?? [])])],
    homepage: `https://github.com/tunnel-sh/tunnel/tree/main/packages/${folder}#readme`,
    bugs: { url: "https://github.com/tunnel-sh/tunnel/issues" },
    repository: { type: "git", url: REPOSITORY_URL, directory: `packages/${folder}` },
    license: "MIT",
    author: AUTHOR,
    engines: { ...manifest.engines, node: NODE_RANGE },
    files: files.includes("LICENSE") ? files : [...files, "LICENSE"],
    publishConfig: { ...manifest.publishConfig, access: "public", provenance: true },
  };
  if (manifest.peerDependencies?.["@tunnel-sh/core"]) {
    fields.peerDependencies = { ...manifest.peerDependencies, "@tunnel-sh/core": CORE_PEER_RANGE };
  }
  return fields;
}

const text = (manifest) => JSON.stringify(manifest, null, 2) + "\n";

function differences(actual, expected) {
  const keys = new Set([...Object.keys(actual), ...Object.keys(expected)]);
  const changed = [...keys].filter((key) => JSON.stringify(actual[key]) !== JSON.stringify(expected[key]));
  return changed.length ? `${changed.join(", ")} differ from what publishing needs` : "its fields are out of order";
}

/** Brings every manifest of `root` to the expected metadata (write) or lists what differs (check). */
export function packageMetadata(root, { write }) {
  const problems = [];
  const license = join(root, "LICENSE");
  if (!existsSync(license)) problems.push("LICENSE: missing at the workspace root");
  const targets = [];
  const rootPath = join(root, "package.json");
  const rootManifest = JSON.parse(readFileSync(rootPath, "utf8"));
  targets.push({
    where: "package.json",
    path: rootPath,
    manifest: rootManifest,
    expected: { ...rootManifest, engines: { ...rootManifest.engines, node: NODE_RANGE } },
  });
  const packagesDir = join(root, "packages");
  const folders = existsSync(packagesDir)
    ? readdirSync(packagesDir)
        .filter((folder) => existsSync(join(packagesDir, folder, "package.json")))
        .sort()
    : [];
  for (const folder of folders) {
    const path = join(packagesDir, folder, "package.json");
    const manifest = JSON.parse(readFileSync(path, "utf8"));
    if (manifest.private === true) continue;
    targets.push({ where: `packages/${folder}/package.json`, path, manifest, expected: withFields(manifest, packageFields(manifest, folder)) });
    const copy = join(packagesDir, folder, "LICENSE");
    if (!existsSync(license)) continue;
    if (existsSync(copy) && readFileSync(copy, "utf8") === readFileSync(license, "utf8")) continue;
    if (write) copyFileSync(license, copy);
    else problems.push(`packages/${folder}/LICENSE: ${existsSync(copy) ? "differs from the root LICENSE" : "missing"}`);
  }
  for (const { where, path, manifest, expected } of targets) {
    if (readFileSync(path, "utf8") === text(expected)) continue;
    if (write) writeFileSync(path, text(expected));
    else problems.push(`${where}: ${differences(manifest, expected)}`);
  }
  return problems;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const mode = process.argv[2];
  if (mode !== "--write" && mode !== "--check") {
    console.error("usage: node scripts/package-metadata.mjs --write|--check [workspace root]");
    process.exit(2);
  }
  const root = resolve(process.argv[3] ?? ".");
  const problems = packageMetadata(root, { write: mode === "--write" });
  if (problems.length) {
    console.error(
      `package metadata: ${problems.length} problem(s); run node scripts/package-metadata.mjs --write\n` +
        problems.map((problem) => `  - ${problem}`).join("\n"),
    );
    process.exit(1);
  }
  console.log(mode === "--write" ? "package metadata: written" : "package metadata: every package is ready to publish");
}
