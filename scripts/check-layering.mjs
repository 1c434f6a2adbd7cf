#!/usr/bin/env node
// The package graph of DESIGN.md, checked on every import in every package's src/ and test/:
// - @tunnel-sh/core imports only its own files and Node built-ins;
// - no file imports another package's src/ (only the entry points of its exports map: `@tunnel-sh/<name>`, and
//   `@tunnel-sh/core/internal` for tunnel's own packages);
// - adapters (pool, transports, tracers) import @tunnel-sh/core and never each other;
// - every @tunnel-sh/* or third-party import of src/ is declared in that package's package.json.
// Usage: node scripts/check-layering.mjs [workspace root]. Exits 1 and lists every violation.
import { readFileSync, readdirSync, statSync, existsSync } from "node:fs";
import { builtinModules } from "node:module";
import { join, relative, resolve, dirname, sep } from "node:path";

const root = resolve(process.argv[2] ?? ".");
const packagesDir = join(root, "packages");

/** Which workspace packages each package may import from its src/. */
const ALLOWED = {
  core: [],
  pool: ["core"],
  "transport-ssh2": ["core"],
  "transport-openssh": ["core"],
  "tracer-otel": ["core"],
  "tracer-console": ["core"],
  "embedded-server": [],
  testing: ["core"],
  queue: ["core"],
  cli: ["core", "pool", "transport-ssh2", "transport-openssh", "tracer-otel", "tracer-console", "embedded-server", "queue"],
  bench: ["core", "pool", "transport-ssh2", "transport-openssh", "tracer-console", "queue", "testing"],
};
/** Tests may also use the test helpers and the embedded server (and anything their package may use). */
const TEST_EXTRA = ["testing", "embedded-server"];
/**
 * Test imports a package makes without declaring them. Core's tests use the test kit, which depends on core:
 * declaring it would close a cycle in the package graph (turbo refuses one), so they import its source through the
 * workspace's vitest alias and the `paths` of `packages/core/test/tsconfig.json`.
 */
const UNDECLARED_TEST_IMPORTS = { core: ["@tunnel-sh/testing"] };

const builtins = new Set(builtinModules.flatMap((name) => [name, `node:${name}`]));
const importPattern =
  /(?:^|[\s;])(?:import|export)\s[^'"]*?from\s*["']([^"']+)["']|(?:^|[^.\w])import\s*\(\s*["']([^"']+)["']\s*\)|^\s*import\s*["']([^"']+)["']/gm;

function walk(dir, out = []) {
  if (!existsSync(dir)) return out;
  for (const entry of readdirSync(dir)) {
    if (entry === "node_modules" || entry === "dist" || entry === "fixtures") continue;
    const path = join(dir, entry);
    if (statSync(path).isDirectory()) walk(path, out);
    else if (/\.(c|m)?[jt]sx?$/.test(entry) && !entry.endsWith(".d.ts")) out.push(path);
  }
  return out;
}

/** The specifiers a workspace package's `exports` map offers (`@tunnel-sh/core`, `@tunnel-sh/core/internal`). */
function entryPoints(folder) {
  const manifestPath = join(packagesDir, folder, "package.json");
  const manifest = existsSync(manifestPath) ? JSON.parse(readFileSync(manifestPath, "utf8")) : {};
  const subpaths = Object.keys(manifest.exports ?? { ".": true }).filter((subpath) => subpath !== "./package.json");
  return new Set(subpaths.map((subpath) => `@tunnel-sh/${folder}${subpath === "." ? "" : subpath.slice(1)}`));
}

function packageName(specifier) {
  const parts = specifier.split("/");
  return specifier.startsWith("@") ? parts.slice(0, 2).join("/") : parts[0];
}

const rootManifest = existsSync(join(root, "package.json")) ? JSON.parse(readFileSync(join(root, "package.json"), "utf8")) : {};
/** Tools every package's tests may use: the workspace root's devDependencies (vitest, fast-check, ...). */
const rootDev = new Set(Object.keys(rootManifest.devDependencies ?? {}));
const violations = [];
const folders = existsSync(packagesDir) ? readdirSync(packagesDir).filter((f) => existsSync(join(packagesDir, f, "package.json"))) : [];
for (const folder of folders) {
  const packageDir = join(packagesDir, folder);
  const manifest = JSON.parse(readFileSync(join(packageDir, "package.json"), "utf8"));
  const declared = new Set([
    ...Object.keys(manifest.dependencies ?? {}),
    ...Object.keys(manifest.peerDependencies ?? {}),
    ...Object.keys(manifest.optionalDependencies ?? {}),
    // Bundled into dist/ at build time (`tunnel.bundles`, read by the package's tsup config): imported by src/,
    // installed as a devDependency, not a runtime dependency of the published package.
    ...(manifest.tunnel?.bundles ?? []).filter((name) => name in (manifest.devDependencies ?? {})),
  ]);
  const devDeclared = new Set([...declared, ...Object.keys(manifest.devDependencies ?? {}), ...rootDev]);
  const allowed = ALLOWED[folder];
  if (!allowed) {
    violations.push(`${folder}: unknown package; add it to the graph in scripts/check-layering.mjs`);
    continue;
  }
  for (const file of [...walk(join(packageDir, "src")), ...walk(join(packageDir, "test"))]) {
    const isTest = file.startsWith(join(packageDir, "test") + sep);
    // Examples in doc comments are not imports.
    const text = readFileSync(file, "utf8")
      .replace(/\/\*[\s\S]*?\*\//g, "")
      .replace(/^\s*\/\/.*$/gm, "");
    const where = relative(root, file);
    for (const match of text.matchAll(importPattern)) {
      const specifier = match[1] ?? match[2] ?? match[3];
      if (!specifier) continue;
      if (specifier.startsWith(".")) {
        const target = resolve(dirname(file), specifier);
        if (!target.startsWith(packageDir + sep)) violations.push(`${where}: relative import "${specifier}" leaves the package`);
        else if (isTest === false && !target.startsWith(join(packageDir, "src") + sep)) violations.push(`${where}: src imports "${specifier}" outside src/`);
        continue;
      }
      if (builtins.has(specifier) || builtins.has(specifier.split("/")[0])) {
        if (!specifier.startsWith("node:")) violations.push(`${where}: import Node built-ins with the node: prefix ("${specifier}")`);
        continue;
      }
      const name = packageName(specifier);
      if (name.startsWith("@tunnel-sh/")) {
        const other = name.slice("@tunnel-sh/".length);
        if (specifier !== name && !entryPoints(other).has(specifier)) {
          const others = [...entryPoints(other)].filter((entry) => entry !== name);
          violations.push(`${where}: imports "${specifier}"; use the public entry point "${name}"${others.length > 0 ? ` (or ${others.join(", ")})` : ""}`);
        }
        if (other === folder) continue;
        const may = isTest ? [...allowed, ...TEST_EXTRA] : allowed;
        if (!may.includes(other)) violations.push(`${where}: @tunnel-sh/${folder} must not import ${name}`);
        const undeclaredAllowed = isTest && (UNDECLARED_TEST_IMPORTS[folder] ?? []).includes(name);
        if (!undeclaredAllowed && !(isTest ? devDeclared : declared).has(name))
          violations.push(`${where}: imports ${name}, which package.json does not declare`);
        continue;
      }
      if (folder === "core" && !isTest) {
        violations.push(`${where}: @tunnel-sh/core has no runtime dependencies but imports "${specifier}"`);
        continue;
      }
      if (!(isTest ? devDeclared : declared).has(name)) violations.push(`${where}: imports "${name}", which package.json does not declare`);
    }
  }
  if (folder === "core" && Object.keys(manifest.dependencies ?? {}).length > 0) {
    violations.push(`packages/core/package.json: core must have no runtime dependencies`);
  }
}

if (violations.length > 0) {
  console.error(`layering: ${violations.length} violation(s)\n` + violations.map((v) => `  - ${v}`).join("\n"));
  process.exit(1);
}
console.log(`layering: ${folders.length} packages checked, no violations`);
