import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { loadInventory, parseInventory, selectHosts } from "../src/index.js";

const YAML = `
user: deploy
vars:
  LC_ALL: C
  TIER: none
hosts:
  web-1:
    host: 10.0.0.11
    port: 2222
    vars: { ROLE: web-1-own }
  web-2: ops@10.0.0.12:2200
  db-1: {}
  cache-1:
groups:
  web:
    hosts: [web-1, web-2]
    vars: { TIER: frontend, ROLE: web }
  db: [db-1]
  prod: [web, db]
`;

const inventory = await parseInventory(YAML, "inventory.yaml");

describe("parseInventory", () => {
  it("reads hosts in file order with address, user and port, the top-level user as default", () => {
    expect(inventory.hosts.map((host) => [host.name, host.target])).toEqual([
      ["web-1", { host: "10.0.0.11", user: "deploy", port: 2222 }],
      ["web-2", { host: "10.0.0.12", user: "ops", port: 2200 }],
      ["db-1", { host: "db-1", user: "deploy" }],
      ["cache-1", { host: "cache-1", user: "deploy" }],
    ]);
  });

  it("merges vars: top level, then groups, then the host's own", () => {
    const vars = Object.fromEntries(inventory.hosts.map((host) => [host.name, host.vars]));
    expect(vars["web-1"]).toEqual({ LC_ALL: "C", TIER: "frontend", ROLE: "web-1-own" });
    expect(vars["web-2"]).toEqual({ LC_ALL: "C", TIER: "frontend", ROLE: "web" });
    expect(vars["db-1"]).toEqual({ LC_ALL: "C", TIER: "none" });
  });

  it("expands nested groups", () => {
    expect(inventory.groups.get("prod")).toEqual(["web-1", "web-2", "db-1"]);
  });

  it("reads the same inventory from JSON", async () => {
    const json = JSON.stringify({ hosts: { "web-1": { host: "10.0.0.11", port: "2222", vars: { N: 1, ON: true } } }, groups: { web: ["web-1"] } });
    const parsed = await parseInventory(json, "inventory.json", "json");
    expect(parsed.hosts[0]?.target).toEqual({ host: "10.0.0.11", port: 2222 });
    expect(parsed.hosts[0]?.vars).toEqual({ N: "1", ON: "true" });
  });

  it("accepts a plain list of host specs", async () => {
    const parsed = await parseInventory("hosts: [web-1, 'root@[::1]:2222']");
    expect(parsed.hosts.map((host) => host.target)).toEqual([{ host: "web-1" }, { host: "::1", user: "root", port: 2222 }]);
  });

  it.each([
    ["hosts: { web-1: { adress: x } }", /hosts\.web-1\.adress: is not a host setting/],
    ["hosts: { web-1: { port: 70000 } }", /hosts\.web-1\.port: must be a port number/],
    ["hosts: { web-1: { vars: { 1BAD: x } } }", /hosts\.web-1\.vars\.1BAD: is not a valid environment variable name/],
    ["hosts: { web-1: { vars: { A: [1] } } }", /must be a string, number or boolean/],
    ["hosts: { web-1: {} }\ngroups: { web: [web-9] }", /groups\.web: "web-9" is neither a host nor a group/],
    ["hosts: { a: {} }\ngroups: { x: [y], y: [x] }", /contains itself/],
    ["hosts: { a: {} }\ngroups: { a: [a] }", /groups\.a: has the same name as a host/],
    ["servers: {}", /servers: is not an inventory section/],
    ["hosts: { web-1: 'bad host!' }", /hosts\.web-1/],
    ["hosts: [web-1\n", /syntax/],
    ["- just\n- a list\n", /document: must be a mapping/],
  ])("rejects %j naming the field", async (text, message) => {
    await expect(parseInventory(text, "inv.yaml")).rejects.toThrow(message);
  });
});

describe("selectHosts", () => {
  const names = (hosts: readonly { name: string }[]) => hosts.map((host) => host.name);

  it("selects every host without a selection", () => {
    expect(names(selectHosts(inventory))).toEqual(["web-1", "web-2", "db-1", "cache-1"]);
  });

  it("unites groups and name patterns, in inventory order", () => {
    expect(names(selectHosts(inventory, { groups: ["db"], patterns: ["web-*"] }))).toEqual(["web-1", "web-2", "db-1"]);
    expect(names(selectHosts(inventory, { patterns: ["c?che-1"] }))).toEqual(["cache-1"]);
  });

  it("refuses an unknown group and a pattern matching nothing", () => {
    expect(() => selectHosts(inventory, { groups: ["nope"] })).toThrow(/no group "nope".*groups: web, db, prod/);
    expect(() => selectHosts(inventory, { patterns: ["app-*"] })).toThrow(/no host in the inventory matches "app-\*"/);
  });
});

describe("loadInventory", () => {
  it("parses .json files as JSON and others as YAML, and names an unreadable file", async () => {
    const dir = await mkdtemp(join(tmpdir(), "tunnel-cli-inventory-"));
    try {
      await writeFile(join(dir, "hosts.json"), '{"hosts": {"a": {}}}');
      await writeFile(join(dir, "hosts.yml"), "hosts:\n  b: {}\n");
      expect((await loadInventory(join(dir, "hosts.json"))).hosts[0]?.name).toBe("a");
      expect((await loadInventory(join(dir, "hosts.yml"))).hosts[0]?.name).toBe("b");
      await expect(loadInventory(join(dir, "missing.yaml"))).rejects.toThrow(/missing\.yaml: cannot read it \(ENOENT\)/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
