import { describe, expect, it } from "vitest";
import type { WaiterReport } from "@tunnel-sh/core/internal";
import { MarkerFilter } from "../src/wrapper.js";

async function filter(nonce: string, chunks: readonly string[]): Promise<{ text: string; markers: WaiterReport[] }> {
  const markers: WaiterReport[] = [];
  const stream = new MarkerFilter(nonce, (marker) => markers.push(marker));
  let text = "";
  stream.on("data", (chunk: Buffer) => (text += chunk.toString("latin1")));
  const done = new Promise((resolve) => stream.on("end", resolve));
  for (const chunk of chunks) stream.write(Buffer.from(chunk, "latin1"));
  stream.end();
  await done;
  return { text, markers };
}

describe("MarkerFilter", () => {
  const nonce = "tunnelabc123";
  it("strips report lines anywhere, split across chunks, and reports them", async () => {
    const { text, markers } = await filter(nonce, [`${nonce}:pid:4`, "2:perl\nhello\nab", `c${nonce.slice(0, 5)}`, `${nonce.slice(5)}:signal:15:TERM\r\n`]);
    expect(text).toBe("hello\nabc");
    expect(markers).toEqual([
      { kind: "pid", pid: 42, waiter: "perl" },
      { kind: "signal", number: 15, signal: "SIGTERM" },
    ]);
  });

  it("passes through lookalikes and partial prefixes untouched", async () => {
    const { text, markers } = await filter(nonce, ["tunnelab", "x tunnel", `${nonce}:other\n`, "tun"]);
    expect(text).toBe(`tunnelabx tunnel${nonce}:other\ntun`);
    expect(markers).toEqual([]);
  });
});
