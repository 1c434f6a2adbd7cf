import { describe, expect, it } from "vitest";
import { FakeTransport, createCertificateAuthority, startFaultProxy, startSshd } from "../src/index.js";

describe("the test kit refuses unknown options before doing anything", () => {
  it("startSshd", async () => {
    await expect(startSshd({ maxSession: 3 } as never)).rejects.toMatchObject({
      code: "CONFIG",
      field: "maxSession",
      message: expect.stringContaining("is not an option of startSshd (did you mean maxSessions?)"),
    });
    await expect(startSshd({ maxSessions: 0 })).rejects.toMatchObject({ code: "CONFIG", field: "maxSessions" });
    await expect(startSshd({ usePam: "no" as never })).rejects.toMatchObject({ code: "CONFIG", field: "usePam" });
    await expect(startSshd({ extraConfig: ["MaxStartups 2\nPermitRootLogin yes"] })).rejects.toMatchObject({ code: "CONFIG", field: "extraConfig" });
    await expect(startSshd({ hostCertificate: { authority: "/tmp/ca" } as never })).rejects.toMatchObject({ code: "CONFIG", field: "hostCertificate" });
    const authority = await createCertificateAuthority();
    try {
      await expect(startSshd({ hostCertificate: { authority, keyType: "dsa" as never } })).rejects.toMatchObject({
        code: "CONFIG",
        field: "hostCertificate.keyType",
      });
    } finally {
      await authority.remove();
    }
  });

  it("startFaultProxy", async () => {
    await expect(startFaultProxy({ target: { host: "127.0.0.1", port: 22 }, delay: 5 } as never)).rejects.toMatchObject({ code: "CONFIG", field: "delay" });
    await expect(startFaultProxy({ target: { host: "127.0.0.1", prot: 22 } } as never)).rejects.toMatchObject({ code: "CONFIG", field: "target.prot" });
    await expect(startFaultProxy({ target: { host: "127.0.0.1", port: "22" } } as never)).rejects.toMatchObject({ code: "CONFIG", field: "target.port" });
    await expect(startFaultProxy(undefined as never)).rejects.toMatchObject({ code: "CONFIG", field: "target" });
  });

  it("FakeTransport", () => {
    expect(() => new FakeTransport({ maxChanels: 2 } as never)).toThrow(
      expect.objectContaining({ code: "CONFIG", field: "maxChanels", message: expect.stringContaining("(did you mean maxChannels?)") }),
    );
    expect(() => new FakeTransport({ maxChannels: 0 })).toThrow(expect.objectContaining({ code: "CONFIG", field: "maxChannels" }));
    expect(() => new FakeTransport({ identity: "key" as never })).toThrow(expect.objectContaining({ code: "CONFIG", field: "identity" }));
    expect(new FakeTransport({ maxChannels: 3, name: "fake-2" }).name).toBe("fake-2");
  });
});
