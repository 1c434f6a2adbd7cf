#!/usr/bin/env node
// Writes the root README's compatibility table from a host-matrix run.
//
//   TUNNEL_MATRIX_REPORT=$PWD/integration/.matrix/results.json \
//     pnpm --filter @tunnel-sh/integration-tests exec vitest run test/host-matrix.integration.test.ts
//   node scripts/matrix-table.mjs [integration/.matrix/results.json]
//
// The table goes between the `host-matrix:start` and `host-matrix:end` markers of README.md: one row per
// server × login shell, one column per transport, each saying how many checks passed, which fail with a typed error
// by design, which are known gaps, and which failed.
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const root = process.cwd();
const reportPath = process.argv[2] ?? join(root, "integration", ".matrix", "results.json");
const outcomes = JSON.parse(readFileSync(reportPath, "utf8"));

const SERVERS = {
  openssh: "OpenSSH sshd (UsePAM no)",
  "openssh-pam": "OpenSSH sshd (UsePAM yes)",
  "openssh-locked": "OpenSSH sshd, locked down (MaxSessions 1, PermitTTY no, no SFTP)",
  dropbear: "dropbear (Debian dropbear-bin)",
};
const SHELLS = {
  bash: "bash",
  dash: "dash",
  zsh: "zsh",
  mksh: "mksh",
  fish: "fish",
  tcsh: "tcsh",
  ash: "busybox ash",
  busybox: "busybox-only userland (ash, busybox PATH)",
};

/** @param {Array<{transport:string,server:string,shell:string,full:boolean,check:string,expected:string,passed:boolean}>} rows */
function summary(rows) {
  if (rows.length === 0) return "not run";
  const works = rows.filter((row) => row.expected === "works" && row.passed);
  const typed = rows.filter((row) => row.expected !== "works" && !row.expected.startsWith("gap:") && row.passed);
  const gaps = rows.filter((row) => row.expected.startsWith("gap:") && row.passed);
  const failed = rows.filter((row) => !row.passed);
  const parts = [`${works.length === rows.length ? "✓ all" : `✓ ${works.length}/${rows.length}`}`];
  if (typed.length > 0) parts.push(`typed error by design: ${typed.map((row) => `${row.check} (${row.expected})`).join(", ")}`);
  if (gaps.length > 0) parts.push(`✗ known gap: ${gaps.map((row) => row.check).join(", ")}`);
  if (failed.length > 0) parts.push(`✗ FAILED: ${failed.map((row) => row.check).join(", ")}`);
  return parts.join("; ");
}

const cells = [];
for (const row of outcomes) {
  const key = `${row.server}|${row.shell}`;
  if (!cells.some((cell) => cell.key === key)) cells.push({ key, server: row.server, shell: row.shell, full: row.full });
}
const checks = [...new Set(outcomes.map((row) => row.check))];
const gapNotes = new Map();
for (const row of outcomes) if (row.expected.startsWith("gap:")) gapNotes.set(`${row.server}|${row.transport}`, row.expected.slice(4));

const lines = [
  "| server | login shell | checks | ssh2 | openssh |",
  "|---|---|---|---|---|",
  ...cells.map((cell) => {
    const rows = (transport) => outcomes.filter((row) => row.server === cell.server && row.shell === cell.shell && row.transport === transport);
    const count = new Set(
      rows("ssh2")
        .concat(rows("openssh"))
        .map((row) => row.check),
    ).size;
    return `| ${SERVERS[cell.server] ?? cell.server} | ${SHELLS[cell.shell] ?? cell.shell} | ${cell.full ? `full (${count})` : `subset (${count})`} | ${summary(rows("ssh2"))} | ${summary(rows("openssh"))} |`;
  }),
  "",
  `Checks: ${checks.map((check) => `\`${check}\``).join(", ")}. "full" cells run every check; "subset" cells (shells and`,
  "servers that do not differ in kind from a full cell) run a representative part of them.",
  ...[...gapNotes].map(([key, note]) => {
    const [server, transport] = key.split("|");
    return `Gap on ${SERVERS[server] ?? server} over ${transport}: ${note}.`;
  }),
];

const readmePath = join(root, "README.md");
const readme = readFileSync(readmePath, "utf8");
const start = "<!-- host-matrix:start -->";
const end = "<!-- host-matrix:end -->";
const from = readme.indexOf(start);
const to = readme.indexOf(end);
if (from === -1 || to === -1 || to < from) throw new Error(`README.md needs the ${start} and ${end} markers`);
writeFileSync(readmePath, `${readme.slice(0, from + start.length)}\n${lines.join("\n")}\n${readme.slice(to)}`);
console.log(`README.md: ${cells.length} cells, ${outcomes.length} outcomes from ${reportPath}`);
