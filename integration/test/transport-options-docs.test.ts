/**
 * The option tables in the transport READMEs are the ones the code accepts: both show the same shared table
 * (docs/transport-options.md, copied by `node scripts/transport-options.mjs`), which lists exactly core's
 * `SshTransportOptions`, and each README's own table lists exactly that transport's other options.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { SSH_TRANSPORT_OPTIONS, type Transport } from "@tunnel-sh/core";
import { OPENSSH_TRANSPORT_OPTIONS, OpenSshTransport } from "@tunnel-sh/transport-openssh";
import { SSH2_TRANSPORT_OPTIONS, Ssh2Transport } from "@tunnel-sh/transport-ssh2";
import { describe, expect, it } from "vitest";

const root = join(import.meta.dirname, "..", "..");
const START = "<!-- shared-transport-options:start -->";
const END = "<!-- shared-transport-options:end -->";

function sharedBlock(text: string): string {
  const start = text.indexOf(START);
  const end = text.indexOf(END);
  expect(start, "the start marker").toBeGreaterThanOrEqual(0);
  expect(end, "the end marker after the start marker").toBeGreaterThan(start);
  return text.slice(start, end + END.length);
}

/** The table under the "Options of this transport only" heading, up to the first line that is not a table row. */
function ownTable(text: string): string {
  const heading = text.indexOf("### Options of this transport only");
  expect(heading, "the own-options heading").toBeGreaterThanOrEqual(0);
  const lines = text.slice(heading).split("\n").slice(1);
  const first = lines.findIndex((line) => line.startsWith("|"));
  const rest = lines.slice(first);
  const after = rest.findIndex((line) => !line.startsWith("|"));
  return rest.slice(0, after < 0 ? undefined : after).join("\n");
}

/** The top-level option names of a table's first column: `` `transfer.chunkSize` `` counts as `transfer`, once. */
function optionNames(table: string): string[] {
  const names: string[] = [];
  for (const line of table.split("\n")) {
    if (!line.startsWith("| `")) continue;
    const cell = line.split("|")[1] ?? "";
    for (const match of cell.matchAll(/`([A-Za-z]+)(?:\.[A-Za-z]+)?`/g)) {
      const name = match[1] as string;
      if (!names.includes(name)) names.push(name);
    }
  }
  return names;
}

const transports: ReadonlyArray<{
  readonly name: string;
  readonly folder: string;
  readonly accepted: readonly string[];
  readonly make: (options: Record<string, unknown>) => Transport;
}> = [
  { name: "Ssh2Transport", folder: "transport-ssh2", accepted: SSH2_TRANSPORT_OPTIONS, make: (options) => new Ssh2Transport(options) },
  { name: "OpenSshTransport", folder: "transport-openssh", accepted: OPENSSH_TRANSPORT_OPTIONS, make: (options) => new OpenSshTransport(options) },
];

const shared = sharedBlock(readFileSync(join(root, "docs", "transport-options.md"), "utf8"));

describe("the shared transport options table", () => {
  it("lists exactly core's SshTransportOptions, in order", () => {
    expect(optionNames(shared)).toEqual([...SSH_TRANSPORT_OPTIONS]);
  });
});

describe.each(transports)("$name README", ({ name, folder, accepted, make }) => {
  const readme = readFileSync(join(root, "packages", folder, "README.md"), "utf8");

  it("shows the shared table exactly as docs/transport-options.md has it (node scripts/transport-options.mjs)", () => {
    expect(sharedBlock(readme)).toBe(shared);
  });

  it(`lists in its own table exactly the other options ${name} accepts`, () => {
    const own = accepted.filter((option) => !(SSH_TRANSPORT_OPTIONS as readonly string[]).includes(option));
    expect(optionNames(ownTable(readme))).toEqual(own);
    expect(accepted.slice(0, SSH_TRANSPORT_OPTIONS.length)).toEqual([...SSH_TRANSPORT_OPTIONS]);
  });

  it("documents only names the constructor accepts, and the constructor refuses the other transport's own names", () => {
    for (const option of [...optionNames(sharedBlock(readme)), ...optionNames(ownTable(readme))]) {
      expect(() => make({ [option]: undefined }), option).not.toThrow();
    }
    const other = transports.find((transport) => transport.name !== name)?.accepted ?? [];
    for (const option of other.filter((candidate) => !accepted.includes(candidate))) {
      expect(() => make({ [option]: undefined }), option).toThrow(expect.objectContaining({ code: "CONFIG", field: option }));
    }
  });
});
