#!/usr/bin/env node
// What each published package's users install is exactly what its built code needs, checked on every package's dist/:
// - every bare import of dist/**/*.js (static, re-export, dynamic) is in `dependencies`, `peerDependencies` or
//   `optionalDependencies`, and every package declared there is imported by dist/ (a runtime dependency nothing
//   imports only makes installs bigger);
// - every bare import of dist/**/*.d.ts resolves for a strict consumer: the package is declared and ships its own
//   types, or its `@types/` package is a dependency (a devDependency is not installed for users: TS7016); every
//   `@types/` dependency is used by dist/**/*.d.ts.
// Private packages (bench, integration) are left out. Run after `pnpm build`.
// Usage: node scripts/check-dependencies.mjs [workspace root]. Exits 1 and lists every violation.
import { readFileSync, readdirSync, statSync, existsSync } from "node:fs";
import { builtinModules } from "node:module";
import { dirname, join, relative, resolve } from "node:path";
import ts from "typescript";

const root = resolve(process.argv[2] ?? ".");
const packagesDir = join(root, "packages");
// tsup drops the `node:` prefix, so built code names built-ins bare ("fs/promises").
const builtins = new Set(builtinModules.flatMap((name) => [name, `node:${name}`]));

function walk(dir, out = []) {
  if (!existsSync(dir)) return out;
  for (const entry of readdirSync(dir)) {
    const path = join(dir, entry);
    if (statSync(path).isDirectory()) walk(path, out);
    else if (/\.(c|m)?js$/.test(entry) || /\.d\.(c|m)?ts$/.test(entry)) out.push(path);
  }
  return out;
}

function packageName(specifier) {
  const parts = specifier.split("/");
  return specifier.startsWith("@") ? parts.slice(0, 2).join("/") : parts[0];
}

/** The package that holds the types of `name` when it ships none: `@types/node-ssh`, `@types/scope__name`. */
function typesPackage(name) {
  return name.startsWith("@") ? `@types/${name.slice(1).replace("/", "__")}` : `@types/${name}`;
}

/** Bare specifiers a file imports; TypeScript's scanner skips comments and strings (doc examples are not imports). */
function bareImports(file) {
  const info = ts.preProcessFile(readFileSync(file, "utf8"), true, true);
  const specifiers = [...info.importedFiles.map((entry) => entry.fileName), ...info.typeReferenceDirectives.map((entry) => entry.fileName)];
  return specifiers.filter((specifier) => !specifier.startsWith(".") && !specifier.startsWith("/") && !specifier.startsWith("#"));
}

/** The installed manifest of `name` as seen from `packageDir`: a workspace package, or node_modules up to the root. */
function installedManifest(packageDir, name) {
  if (workspace.has(name)) return workspace.get(name);
  for (let dir = packageDir; ; dir = dirname(dir)) {
    const path = join(dir, "node_modules", name, "package.json");
    if (existsSync(path)) return { dir: dirname(path), manifest: JSON.parse(readFileSync(path, "utf8")) };
    if (dir === root || dirname(dir) === dir) return undefined;
  }
}

function hasTypesCondition(exportsField) {
  if (exportsField === null || typeof exportsField !== "object") return false;
  return Object.entries(exportsField).some(([key, value]) => key === "types" || hasTypesCondition(value));
}

function shipsTypes(installed) {
  const { manifest, dir } = installed;
  return Boolean(manifest.types || manifest.typings || hasTypesCondition(manifest.exports) || existsSync(join(dir, "index.d.ts")));
}

const violations = [];
const folders = existsSync(packagesDir) ? readdirSync(packagesDir).filter((f) => existsSync(join(packagesDir, f, "package.json"))) : [];
const workspace = new Map(
  folders.map((folder) => {
    const dir = join(packagesDir, folder);
    const manifest = JSON.parse(readFileSync(join(dir, "package.json"), "utf8"));
    return [manifest.name, { dir, manifest }];
  }),
);
let checked = 0;
for (const folder of folders) {
  const packageDir = join(packagesDir, folder);
  const manifest = JSON.parse(readFileSync(join(packageDir, "package.json"), "utf8"));
  if (manifest.private) continue;
  checked++;
  const where = relative(root, join(packageDir, "package.json"));
  const runtime = new Set([
    ...Object.keys(manifest.dependencies ?? {}),
    ...Object.keys(manifest.peerDependencies ?? {}),
    ...Object.keys(manifest.optionalDependencies ?? {}),
  ]);
  const development = new Set(Object.keys(manifest.devDependencies ?? {}));
  const files = walk(join(packageDir, "dist"));
  if (files.length === 0) {
    violations.push(`${relative(root, packageDir)}: no dist/ to check; run pnpm build first`);
    continue;
  }
  const imported = new Set();
  const typesImported = new Set();
  for (const file of files) {
    const isTypes = /\.d\.(c|m)?ts$/.test(file);
    const at = relative(root, file);
    for (const specifier of bareImports(file)) {
      if (builtins.has(specifier) || builtins.has(specifier.split("/")[0])) continue;
      const name = packageName(specifier);
      if (name === manifest.name) continue;
      if (isTypes) {
        if (name === "node") continue; // `/// <reference types="node" />`: Node's types are the consumer's own
        typesImported.add(name);
        if (runtime.has(typesPackage(name))) continue;
        const installed = installedManifest(packageDir, name);
        const typed = installed !== undefined && shipsTypes(installed);
        if (!runtime.has(name)) {
          violations.push(`${at}: its types import "${name}", which is not a dependency or peerDependency`);
        } else if (!typed && development.has(typesPackage(name))) {
          violations.push(
            `${at}: its types import "${name}", whose types come from ${typesPackage(name)}, only a devDependency: consumers get TS7016; make it a dependency`,
          );
        } else if (!typed) {
          violations.push(`${at}: its types import "${name}", which ships no types (is it installed?) and has no ${typesPackage(name)} dependency`);
        }
      } else {
        imported.add(name);
        if (!runtime.has(name)) violations.push(`${at}: imports "${name}", which is not a dependency or peerDependency`);
      }
    }
  }
  for (const name of runtime) {
    if (name.startsWith("@types/")) {
      const typed = [...typesImported].some((other) => typesPackage(other) === name);
      if (!typed) violations.push(`${where}: ${name} is a runtime dependency but dist/*.d.ts imports nothing it types`);
    } else if (!imported.has(name) && !typesImported.has(name)) {
      violations.push(`${where}: "${name}" is a runtime dependency but dist/ never imports it`);
    }
  }
}

if (violations.length > 0) {
  console.error(`dependencies: ${violations.length} violation(s)\n` + violations.map((v) => `  - ${v}`).join("\n"));
  process.exit(1);
}
console.log(`dependencies: ${checked} packages checked, each declares exactly what its dist/ imports`);
