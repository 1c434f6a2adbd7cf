import { describe, expect, it } from "vitest";
import { describeTarget, parseHostList, parseHostSpec, withDefaults } from "../src/index.js";

describe("parseHostSpec", () => {
  it.each([
    ["web-1", { host: "web-1" }],
    ["deploy@web-1", { host: "web-1", user: "deploy" }],
    ["web-1:2222", { host: "web-1", port: 2222 }],
    ["deploy@10.0.0.5:22", { host: "10.0.0.5", user: "deploy", port: 22 }],
    ["[::1]:2222", { host: "::1", port: 2222 }],
    ["root@[fe80::1%eth0]:22", { host: "fe80::1%eth0", user: "root", port: 22 }],
    ["[2001:db8::7]", { host: "2001:db8::7" }],
    ["::1", { host: "::1" }],
    ["2001:db8::7", { host: "2001:db8::7" }],
    ["my.alias", { host: "my.alias" }],
  ])("parses %s", (spec, expected) => {
    expect(parseHostSpec(spec)).toEqual(expected);
  });

  it.each([
    ["", /empty host/],
    ["web-1:0", /out of range/],
    ["web-1:65536", /out of range/],
    ["web-1:ssh", /not a port number/],
    ["@web-1", /not a valid user name/],
    ["bad user@web-1", /not a valid user name/],
    ["-oProxyCommand=x", /not a host name/],
    ["web;rm", /not a host name/],
    ["[web-1]:22", /not an IPv6 address/],
    ["deploy@:22", /host is missing|not a host name/],
  ])("rejects %j", (spec, message) => {
    expect(() => parseHostSpec(spec)).toThrow(message);
  });
});

describe("parseHostList", () => {
  it("splits commas across repeated -H values, keeps order and drops duplicates and blanks", () => {
    const hosts = parseHostList(["web-1,deploy@web-2:2222", "web-1, [::1]:22,"]);
    expect(hosts.map((host) => host.name)).toEqual(["web-1", "deploy@web-2:2222", "[::1]:22"]);
    expect(hosts[1]?.target).toEqual({ host: "web-2", user: "deploy", port: 2222 });
    expect(hosts[2]?.target).toEqual({ host: "::1", port: 22 });
  });
});

describe("withDefaults", () => {
  it("fills -l and -p only where the host names none", () => {
    const [own, bare] = withDefaults(parseHostList(["ops@web-1:2200,web-2"]), { user: "deploy", port: 22 });
    expect(own?.target).toEqual({ host: "web-1", user: "ops", port: 2200 });
    expect(bare?.target).toEqual({ host: "web-2", user: "deploy", port: 22 });
  });
});

describe("describeTarget", () => {
  it("brackets IPv6 and leaves out what the transport decides", () => {
    expect(describeTarget({ host: "::1", user: "root", port: 22 })).toBe("root@[::1]:22");
    expect(describeTarget({ host: "web-1" })).toBe("web-1");
  });
});
