import { describe, expect, it } from "vitest";
import { copyTarget, formatTarget, targetKey } from "../src/target.js";

const target = { host: "web-1", user: "deploy", port: 2222 };

describe("formatTarget", () => {
  it("renders user@host:port with the optional parts left out", () => {
    expect(formatTarget(target)).toBe("deploy@web-1:2222");
    expect(formatTarget({ host: "::1", port: 22 })).toBe("::1:22");
    expect(formatTarget({ host: "web-1" })).toBe("web-1");
    expect(formatTarget(undefined)).toBe("");
  });
});

describe("targetKey", () => {
  it("renders user@host:port with an empty part for each unknown field", () => {
    expect(targetKey(target)).toBe("deploy@web-1:2222");
    expect(targetKey({ host: "web-1" })).toBe("@web-1:");
  });

  it("brackets IPv6 addresses, so the port stays apart", () => {
    expect(targetKey({ host: "::1", user: "deploy", port: 2222 })).toBe("deploy@[::1]:2222");
  });
});

describe("copyTarget", () => {
  it("keeps the target fields alone, without undefined members", () => {
    const command = { host: "web-1", user: "deploy", cmd: "uptime", timeout: 5_000 };
    const copy = copyTarget(command);
    expect(copy).toEqual({ host: "web-1", user: "deploy" });
    expect(Object.keys(copy)).toEqual(["host", "user"]);
  });
});
