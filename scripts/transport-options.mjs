#!/usr/bin/env node
// Copies the shared transport options table of docs/transport-options.md into both transport READMEs, between the
// `<!-- shared-transport-options:start -->` and `:end` markers. `--check` changes nothing and exits 1 when a README's
// copy differs. Each transport package's test/readme-options.test.ts checks the same, and checks the table against
// the option names the code accepts.
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const root = join(import.meta.dirname, "..");
const START = "<!-- shared-transport-options:start -->";
const END = "<!-- shared-transport-options:end -->";
const SOURCE = join(root, "docs", "transport-options.md");
const READMES = ["transport-ssh2", "transport-openssh"].map((name) => join(root, "packages", name, "README.md"));

function block(text, file) {
  const start = text.indexOf(START);
  const end = text.indexOf(END);
  if (start < 0 || end < start) throw new Error(`${file}: no ${START} … ${END} block`);
  return { start, end: end + END.length, text: text.slice(start, end + END.length) };
}

const check = process.argv.includes("--check");
const shared = block(readFileSync(SOURCE, "utf8"), SOURCE).text;
let stale = 0;
for (const file of READMES) {
  const text = readFileSync(file, "utf8");
  const current = block(text, file);
  if (current.text === shared) continue;
  stale++;
  if (check) console.error(`${file}: the shared options table differs from docs/transport-options.md`);
  else writeFileSync(file, text.slice(0, current.start) + shared + text.slice(current.end));
}
if (check && stale > 0) {
  console.error("run: node scripts/transport-options.mjs");
  process.exit(1);
}
if (!check) console.log(stale === 0 ? "transport READMEs are up to date" : `updated ${stale} README(s)`);
