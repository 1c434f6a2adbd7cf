import { spawnSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { MarkerFilter, newNonce, parseMarker, wrapCommand, type Marker } from "../src/wrapper.js";

async function filter(nonce: string, chunks: readonly string[]): Promise<{ text: string; markers: Marker[] }> {
  const markers: Marker[] = [];
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
    const { text, markers } = await filter(nonce, [`${nonce}:pid:4`, "2\nhello\nab", `c${nonce.slice(0, 5)}`, `${nonce.slice(5)}:exit:143:TERM\r\n`]);
    expect(text).toBe("hello\nabc");
    expect(markers).toEqual([
      { kind: "pid", pid: 42 },
      { kind: "exit", status: 143, signal: "SIGTERM" },
    ]);
  });

  it("passes through lookalikes and partial prefixes untouched", async () => {
    const { text, markers } = await filter(nonce, ["tunnelab", "x tunnel", `${nonce}:other\n`, "tun"]);
    expect(text).toBe(`tunnelabx tunnel${nonce}:other\ntun`);
    expect(markers).toEqual([]);
  });

  it("parses exit reports", () => {
    expect(parseMarker("exit:0:")).toEqual({ kind: "exit", status: 0, signal: null });
    expect(parseMarker("exit:255:")).toEqual({ kind: "exit", status: 255, signal: null });
    expect(parseMarker("exit:137:KILL")).toEqual({ kind: "exit", status: 137, signal: "SIGKILL" });
  });
});

describe("wrapCommand, run by a real local sh", () => {
  // The wrapper is what the login shell runs on the host; /bin/sh here stands in for it.
  const run = (command: string) => {
    const nonce = newNonce();
    const result = spawnSync("/bin/sh", ["-c", wrapCommand(command, nonce)], { env: { ...process.env, SHELL: "/bin/sh" }, stdio: ["ignore", "ignore", "pipe"] });
    return { nonce, stderr: result.stderr.toString() };
  };
  it.each([
    ["exit 0", "exit:0:"],
    ["exit 42", "exit:42:"],
    ["exit 255", "exit:255:"],
    ["kill -TERM $$", "exit:143:TERM"],
    ["kill -KILL $$", "exit:137:KILL"],
  ])("%s reports %s", (command, report) => {
    const { nonce, stderr } = run(command);
    expect(stderr).toMatch(new RegExp(`^${nonce}:pid:\\d+\\n`));
    expect(stderr).toContain(`${nonce}:${report}\n`);
    expect(stderr).not.toMatch(/Terminated|Killed/);
  });

  it("keeps quotes and shell syntax of the command intact", () => {
    const { nonce, stderr } = run(`printf '%s|' "it's" 'a b' >&2; exit 3`);
    expect(stderr).toContain(`it's|a b|${nonce}:exit:3:`);
  });
});
