#!/usr/bin/env node
// Project lint: the habits of STYLE.md that a script can check.
// - every package has the standard files;
// - source and test files are kebab-case;
// - no focused or skipped tests (`.only`, `.skip`, `.todo`, `xit`, `skipIf`) are committed;
// - library sources do not write to the console (only the CLI and the console tracer print).
import { readFileSync, readdirSync, statSync, existsSync } from "node:fs";
import { join, relative, basename } from "node:path";

const root = process.cwd();
const problems = [];
const REQUIRED = ["package.json", "README.md", "CHANGELOG.md", "tsconfig.json", "tsup.config.ts", "src/index.ts"];
const PRINTS = new Set(["cli", "tracer-console", "testing", "bench"]);

function walk(dir, out = []) {
  if (!existsSync(dir)) return out;
  for (const entry of readdirSync(dir)) {
    if (["node_modules", "dist", "fixtures", ".tsbuild", "coverage"].includes(entry)) continue;
    const path = join(dir, entry);
    if (statSync(path).isDirectory()) walk(path, out);
    else if (/\.(m|c)?[jt]s$/.test(entry)) out.push(path);
  }
  return out;
}

for (const folder of readdirSync(join(root, "packages"))) {
  const dir = join(root, "packages", folder);
  if (!statSync(dir).isDirectory()) continue;
  for (const file of REQUIRED) if (!existsSync(join(dir, file))) problems.push(`packages/${folder}: missing ${file}`);
  for (const file of [...walk(join(dir, "src")), ...walk(join(dir, "test"))]) {
    const where = relative(root, file);
    const name = basename(file)
      .replace(/\.(test|integration\.test|bench)?\.?(m|c)?[jt]s$/, "")
      .replace(/\.d$/, "");
    if (!/^[a-z0-9]+(-[a-z0-9]+)*(\.[a-z0-9-]+)*$/.test(name)) problems.push(`${where}: file names are kebab-case`);
    const text = readFileSync(file, "utf8");
    const lines = text.split("\n");
    lines.forEach((line, index) => {
      if (/\b(describe|it|test|suite)\.(only|skip|todo)\(|\.skipIf\(|\bx(it|describe)\(/.test(line)) {
        problems.push(`${where}:${index + 1}: focused or skipped test`);
      }
      if (!PRINTS.has(folder) && file.includes(`${folder}/src/`) && /\bconsole\.(log|error|warn|info|debug)\(/.test(line)) {
        problems.push(`${where}:${index + 1}: library code must not print; report through the tracer or an error`);
      }
    });
  }
}

if (problems.length) {
  console.error(`lint: ${problems.length} problem(s)\n` + problems.map((p) => `  - ${p}`).join("\n"));
  process.exit(1);
}
console.log("lint: no problems");
