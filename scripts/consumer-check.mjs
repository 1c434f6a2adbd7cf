#!/usr/bin/env node
// tunnel as a new npm user meets it. After `pnpm build`, as root (it starts a throwaway sshd):
// 1. packs every publishable package with `pnpm pack` (workspace: ranges rewritten) and checks each tarball's
//    manifest and files;
// 2. installs the tarballs with npm into a fresh "type": "module" project in a temp folder outside the workspace
//    (third-party dependencies come from the npm registry);
// 3. require()s every package from a CommonJS file, under this Node and under the lowest Node that `engines`
//    allows (from the registry's node-linux-<arch> package);
// 4. type-checks every complete README example (a code block that starts with an import and imports only tunnel's
//    packages and Node's) with `strict` and `skipLibCheck: false`, under `module: nodenext` and under
//    `moduleResolution: bundler`;
// 5. runs the root README's "Use it" example, exactly as written, against a real sshd under both Nodes: `web-1` is
//    a Host of the ~/.ssh/config (and known_hosts) of a HOME this check writes.
// Usage: node scripts/consumer-check.mjs [--keep]   (--keep leaves the temp folder for a look)
import { execFileSync, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { arch, platform, tmpdir } from "node:os";
import { join, relative, resolve, sep } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { CORE_PEER_RANGE } from "./package-metadata.mjs";

const root = resolve(fileURLToPath(new URL("..", import.meta.url)));
const keep = process.argv.includes("--keep");
const started = Date.now();
const log = (line) => console.log(`[consumer-check +${((Date.now() - started) / 1000).toFixed(0)}s] ${line}`);
const problems = [];
const expect = (ok, problem) => {
  if (!ok) problems.push(problem);
  return ok;
};

/** Runs a command; its output is returned, or thrown with the command's output when it fails. */
function run(command, args, options = {}) {
  const result = spawnSync(command, args, { encoding: "utf8", maxBuffer: 64 * 1024 * 1024, ...options });
  if (result.status !== 0) {
    const output = `${result.stdout ?? ""}${result.stderr ?? ""}`.trim();
    throw new Error(`${command} ${args.join(" ")} failed (${result.error?.message ?? `exit ${result.status}`}):\n${output}`);
  }
  return result;
}

function publishablePackages() {
  const dir = join(root, "packages");
  return readdirSync(dir)
    .filter((folder) => existsSync(join(dir, folder, "package.json")))
    .map((folder) => ({ folder, dir: join(dir, folder), manifest: JSON.parse(readFileSync(join(dir, folder, "package.json"), "utf8")) }))
    .filter(({ manifest }) => manifest.private !== true)
    .sort((a, b) => a.folder.localeCompare(b.folder));
}

/** The lowest Node that every package's `engines.node` (`>=X.Y[.Z]`) allows. */
function lowestNode(packages) {
  const ranges = new Set([
    JSON.parse(readFileSync(join(root, "package.json"), "utf8")).engines?.node,
    ...packages.map(({ manifest }) => manifest.engines?.node),
  ]);
  if (ranges.size !== 1) throw new Error(`every package (and the root) must state one engines.node; found ${[...ranges].join(", ")}`);
  const [range] = ranges;
  const match = /^>=\s*(\d+)\.(\d+)(?:\.(\d+))?$/.exec(range ?? "");
  if (!match) throw new Error(`engines.node must be ">=X.Y" or ">=X.Y.Z", not ${range}`);
  return `${match[1]}.${match[2]}.${match[3] ?? 0}`;
}

function pack(packages, destination) {
  const tarballs = [];
  for (const { folder, dir, manifest } of packages) {
    if (!existsSync(join(dir, "dist", "index.js"))) throw new Error(`packages/${folder} has no dist/: run pnpm build first`);
    const packed = JSON.parse(run("pnpm", ["pack", "--json", "--pack-destination", destination], { cwd: dir }).stdout);
    const files = packed.files.map((file) => file.path);
    for (const file of ["LICENSE", "README.md", "package.json", "dist/index.js", "dist/index.d.ts"]) {
      expect(files.includes(file), `${manifest.name}: the tarball has no ${file}`);
    }
    const published = JSON.parse(run("tar", ["-xzOf", packed.filename, "package/package.json"]).stdout);
    for (const field of ["dependencies", "peerDependencies", "optionalDependencies"]) {
      for (const [name, range] of Object.entries(published[field] ?? {})) {
        expect(!range.startsWith("workspace:"), `${manifest.name}: ${field}.${name} is published as ${range}`);
      }
    }
    const corePeer = published.peerDependencies?.["@tunnel-sh/core"];
    if (corePeer) expect(corePeer === CORE_PEER_RANGE.replace(/^workspace:/, ""), `${manifest.name}: peer range on core published as ${corePeer}`);
    for (const field of ["repository", "homepage", "bugs", "keywords", "license", "publishConfig", "engines"]) {
      expect(published[field] !== undefined, `${manifest.name}: the published manifest has no ${field}`);
    }
    tarballs.push({ name: manifest.name, path: packed.filename });
  }
  return tarballs;
}

/** Every fenced ts/js block of the READMEs, with where it is. */
function readmeBlocks() {
  const readmes = ["README.md", ...publishablePackages().map(({ folder }) => `packages/${folder}/README.md`)].filter((path) => existsSync(join(root, path)));
  const blocks = [];
  for (const readme of readmes) {
    const text = readFileSync(join(root, readme), "utf8");
    for (const match of text.matchAll(/^```(?:ts|typescript|js|javascript)\n([\s\S]*?)^```/gm)) {
      const line = text.slice(0, match.index).split("\n").length;
      blocks.push({ readme, line, code: match[1] });
    }
  }
  return blocks;
}

/** A block is a complete example when it starts with an import and imports only tunnel's packages and Node's. */
function completeExamples() {
  const examples = [];
  const skipped = [];
  for (const block of readmeBlocks()) {
    if (!/^import\s/.test(block.code.trimStart())) continue;
    const imports = [...block.code.matchAll(/^import\s[^;]*?from\s+"([^"]+)"/gm)].map((match) => match[1]);
    const foreign = imports.filter((specifier) => !specifier.startsWith("@tunnel-sh/") && !specifier.startsWith("node:"));
    if (foreign.length) skipped.push(`${block.readme}:${block.line} (imports ${[...new Set(foreign)].join(", ")})`);
    else examples.push(block);
  }
  return { examples, skipped };
}

/** The first code block under the root README's "## Use it". */
function rootExample() {
  const text = readFileSync(join(root, "README.md"), "utf8");
  const section = /^## Use it\n([\s\S]*?)(?=^## )/m.exec(text)?.[1];
  if (!section) throw new Error('README.md has no "## Use it" section');
  const code = /^```(?:js|javascript|ts|typescript)\n([\s\S]*?)^```/m.exec(section)?.[1];
  if (!code) throw new Error('README.md\'s "## Use it" has no code block');
  return code;
}

function requireEveryPackage(node, label, consumer, tarballs) {
  const script = join(consumer, "require-every-package.cjs");
  writeFileSync(
    script,
    `"use strict";
// CommonJS, as an application that has not moved to ES modules would load tunnel.
for (const name of process.argv.slice(2)) {
  const exports = require(name);
  const names = Object.keys(exports);
  if (names.length === 0) throw new Error(name + " exports nothing");
  console.log(name + ": " + names.length + " exports");
}
`,
  );
  const result = spawnSync(node, [script, ...tarballs.map(({ name }) => name)], { cwd: consumer, encoding: "utf8" });
  const loaded = (result.stdout.match(/ exports$/gm) ?? []).length;
  expect(
    result.status === 0 && loaded === tarballs.length,
    `require() under Node ${label}: ${loaded} of ${tarballs.length} packages loaded\n${result.stdout}${result.stderr}`,
  );
  log(`require() of ${loaded}/${tarballs.length} packages from CommonJS under Node ${label}`);
}

function typeCheck(consumer, examples) {
  const folder = join(consumer, "examples");
  mkdirSync(folder);
  const names = examples.map((example) => {
    const name = `${example.readme.replace(/\/?README\.md$/, "").replace(/^packages\//, "") || "root"}-line-${example.line}.ts`;
    writeFileSync(join(folder, name), `// ${example.readme}, line ${example.line}\n${example.code}`);
    return name;
  });
  const common = { strict: true, skipLibCheck: false, noEmit: true, target: "es2022", types: ["node"] };
  const settings = {
    nodenext: { module: "nodenext", moduleResolution: "nodenext" },
    bundler: { module: "esnext", moduleResolution: "bundler" },
  };
  for (const [label, options] of Object.entries(settings)) {
    const config = join(consumer, `tsconfig.${label}.json`);
    writeFileSync(config, JSON.stringify({ compilerOptions: { ...common, ...options }, include: ["examples/*.ts"] }, null, 2));
    const result = spawnSync(process.execPath, [join(consumer, "node_modules", "typescript", "bin", "tsc"), "-p", config], { cwd: consumer, encoding: "utf8" });
    expect(result.status === 0, `tsc (${label}, strict, skipLibCheck: false) rejects the README examples:\n${result.stdout}${result.stderr}`);
    log(`${names.length} README examples type-check under ${label}: ${result.status === 0 ? "yes" : "NO"}`);
  }
}

async function runRootExample(consumer, work, nodes) {
  const { startSshd } = await import(pathToFileURL(join(root, "packages", "testing", "dist", "index.js")).href);
  const sshd = await startSshd();
  const destination = "/tmp/app.tar";
  try {
    const home = join(work, "home");
    mkdirSync(join(home, ".ssh"), { recursive: true, mode: 0o700 });
    writeFileSync(
      join(home, ".ssh", "config"),
      ["Host web-1", `  HostName ${sshd.host}`, `  Port ${sshd.port}`, `  User ${sshd.users.sudo.name}`, `  IdentityFile ${sshd.clientKeyPath}`, ""].join("\n"),
      { mode: 0o600 },
    );
    writeFileSync(join(home, ".ssh", "known_hosts"), `${sshd.knownHostsLine}\n`, { mode: 0o600 });
    chmodSync(join(home, ".ssh"), 0o700);
    const script = join(consumer, "readme-example.js");
    writeFileSync(script, rootExample());
    // Only what a shell would hand the program: no agent socket, so the key comes from the ssh_config.
    const env = { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: home, LANG: "C.UTF-8" };
    for (const { node, label } of nodes) {
      const upload = randomBytes(256 * 1024);
      writeFileSync(join(consumer, "app.tar"), upload);
      rmSync(destination, { force: true });
      const result = spawnSync(node, [script], { cwd: consumer, env, encoding: "utf8", timeout: 10 * 60_000 });
      const output = `${result.stdout}${result.stderr}`;
      const where = `the root README example under Node ${label}`;
      const ran = expect(result.status === 0, `${where} failed (exit ${result.status}${result.signal ? `, ${result.signal}` : ""}):\n${output}`);
      const spans = result.stdout.split("\n").flatMap((line) => {
        try {
          const parsed = JSON.parse(line);
          return typeof parsed === "object" && parsed !== null && "spanId" in parsed ? [parsed] : [];
        } catch {
          return [];
        }
      });
      for (const name of ["tunnel.command", "tunnel.script", "tunnel.transfer"]) {
        const span = spans.find((candidate) => candidate.name === name);
        expect(span?.status === "ok", `${where}: its ${name} span: ${span ? JSON.stringify(span) : "not printed"}\n${output}`);
      }
      expect(
        result.stdout.split("\n").some((line) => /^\d+ /.test(line)),
        `${where} did not print the command's exit code:\n${output}`,
      );
      const uploaded = existsSync(destination) ? readFileSync(destination) : undefined;
      expect(uploaded?.equals(upload) === true, `${where}: ${destination} ${uploaded ? "differs from ./app.tar" : "is missing"}`);
      log(
        `${where} ran against sshd on port ${sshd.port}: ${ran ? "exit 0" : "FAILED"}, ${spans.length} spans, upload ${uploaded?.equals(upload) ? "verified" : "MISSING"}`,
      );
    }
  } finally {
    rmSync(destination, { force: true });
    await sshd.stop();
  }
}

async function main() {
  const packages = publishablePackages();
  const minimum = lowestNode(packages);
  const work = mkdtempSync(join(tmpdir(), "tunnel-consumer-"));
  if (!relative(root, work).startsWith("..") || work.startsWith(root + sep)) throw new Error(`${work} is inside the workspace`);
  try {
    const tarballs = pack(packages, join(work, "tarballs"));
    log(`packed ${tarballs.length} packages: ${tarballs.map(({ name }) => name).join(", ")}`);

    const consumer = join(work, "consumer");
    mkdirSync(consumer);
    writeFileSync(join(consumer, "package.json"), JSON.stringify({ name: "tunnel-consumer", version: "1.0.0", private: true, type: "module" }, null, 2));
    const devDependencies = JSON.parse(readFileSync(join(root, "package.json"), "utf8")).devDependencies;
    const npm = ["--no-audit", "--no-fund", "--loglevel=error"];
    run(
      "npm",
      ["install", ...npm, ...tarballs.map(({ path }) => path), `typescript@${devDependencies.typescript}`, `@types/node@${devDependencies["@types/node"]}`],
      { cwd: consumer },
    );
    log(`npm installed the tarballs into ${consumer}`);

    const lowest = join(work, "node-lowest");
    mkdirSync(lowest);
    const nodePackage = `node-${platform()}-${arch()}`;
    run("npm", ["install", ...npm, "--prefix", lowest, `${nodePackage}@${minimum}`]);
    const lowestNodeBinary = join(lowest, "node_modules", nodePackage, "bin", "node");
    const version = execFileSync(lowestNodeBinary, ["--version"], { encoding: "utf8" }).trim();
    expect(version === `v${minimum}`, `${nodePackage}@${minimum} runs Node ${version}`);
    requireEveryPackage(process.execPath, process.version, consumer, tarballs);
    requireEveryPackage(lowestNodeBinary, `${version} (the lowest engines.node allows)`, consumer, tarballs);

    const { examples, skipped } = completeExamples();
    expect(
      examples.some((example) => example.readme === "README.md"),
      "the root README has no complete example",
    );
    typeCheck(consumer, examples);
    if (skipped.length) log(`not type-checked, for their third-party imports: ${skipped.join("; ")}`);

    await runRootExample(consumer, work, [
      { node: process.execPath, label: process.version },
      { node: lowestNodeBinary, label: version },
    ]);
  } finally {
    if (keep) log(`kept ${work}`);
    else rmSync(work, { recursive: true, force: true });
  }
  if (problems.length) {
    console.error(`consumer check: ${problems.length} problem(s)\n` + problems.map((problem) => `  - ${problem}`).join("\n"));
    process.exit(1);
  }
  log("consumer check: every package installs, loads, type-checks and runs as a user gets it");
}

await main();
