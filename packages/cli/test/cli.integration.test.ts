/**
 * `tunnel` end to end against a real sshd: as a process (host aliases from an ssh_config, an unreachable host,
 * `--json`, a progress bar on a pseudo-terminal, Ctrl-C) and in-process through `runCli` (inventories, scripts,
 * transfers both ways, sudo, timeouts).
 */
import { createHash, randomBytes } from "node:crypto";
import { mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough, Readable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { remoteProcesses, sshdSupport, startSshd, type Sshd, freePort } from "@tunnel-sh/testing";
import { ExitCode, runCli, type CliIo, type JsonReport } from "../src/index.js";
import { BIN, assertFreshBuild, eventually, plain, runToEnd, shellWord, start, tunnel } from "./process.js";
import { Capture, FakeTerminal } from "./support.js";

const support = sshdSupport();

describe("sshd availability", () => {
  it("has a runnable sshd (in CI this is required)", () => {
    expect(support.available || !process.env["CI"]).toBe(true);
  });
});

function sha256(data: Buffer): string {
  return createHash("sha256").update(data).digest("hex");
}

/** The user's processes running exactly `command` (not the shells that started them). */
async function sleepers(user: string, command: string): Promise<string[]> {
  return (await remoteProcesses(user)).filter((entry) => entry.args === command).map((entry) => `${entry.pid} ${entry.args}`);
}

function io(overrides: Partial<CliIo> = {}): CliIo & { stdout: Capture; stderr: Capture } {
  return { stdout: new Capture(), stderr: new Capture(), env: {}, ...overrides } as CliIo & { stdout: Capture; stderr: Capture };
}

if (support.available) {
  describe("tunnel against a real sshd", () => {
    let sshd: Sshd;
    let dir: string;
    let sshConfig: string;
    let deadPort: number;
    /** Options every run needs: the aliases' ssh_config, the test key, the server's known_hosts. */
    let access: string[];
    const user = () => sshd.users.plain.name;
    const remoteFiles: string[] = [];

    beforeAll(async () => {
      assertFreshBuild();
      sshd = await startSshd();
      dir = await mkdtemp(join(tmpdir(), "tunnel-cli-test-"));
      sshConfig = join(dir, "ssh_config");
      await writeFile(
        sshConfig,
        [`Host web-1 web-2 app-*`, `  HostName ${sshd.host}`, `  Port ${sshd.port}`, `  User ${sshd.users.plain.name}`, ""].join("\n"),
      );
      deadPort = await freePort();
      access = ["-F", sshConfig, "-I", sshd.clientKeyPath, "--known-hosts", sshd.knownHostsPath];
    });

    afterAll(async () => {
      for (const file of remoteFiles) await rm(file, { force: true });
      await rm(dir, { recursive: true, force: true });
      await sshd?.stop();
    });

    describe("as a process", () => {
      it("runs on several ssh_config aliases, prefixes their lines, and exits 3 with the unreachable host in the summary", async () => {
        const dead = `127.0.0.1:${deadPort}`;
        const result = await tunnel(["run", ...access, "-H", `web-1,web-2,${dead}`, "--retries", "0", "--", 'echo "hello from $USER"; echo warn >&2']);
        expect(result.code).toBe(ExitCode.HOST_FAILED);
        const lines = result.stdout.split("\n");
        expect(lines).toContainEqual(expect.stringMatching(new RegExp(`^web-1 +\\| hello from ${user()}$`)));
        expect(lines).toContainEqual(expect.stringMatching(new RegExp(`^web-2 +\\| hello from ${user()}$`)));
        expect(result.stderr).toMatch(/^web-1 +\| warn$/m);
        const summary = result.stderr.split("\n");
        expect(summary).toContainEqual(expect.stringMatching(/^HOST\s+EXIT\s+DURATION\s+ATTEMPTS\s+ERROR$/));
        expect(summary).toContainEqual(expect.stringMatching(/^web-1\s+0\s+\S+\s+1$/));
        expect(summary).toContainEqual(expect.stringMatching(new RegExp(`^${dead}\\s+-\\s+\\S+\\s+1\\s+CONNECT: .*ECONNREFUSED`)));
        expect(summary).toContain("3 hosts: 2 ok, 1 failed");
      });

      it("prints one JSON document with every host's result under --json, and exits 1 for a non-zero exit", async () => {
        const result = await tunnel(["run", ...access, "-H", "web-1,web-2", "--json", "--", "echo out; echo err >&2; exit 4"]);
        expect(result.code).toBe(ExitCode.COMMAND_FAILED);
        expect(result.stderr).toBe("");
        const report = JSON.parse(result.stdout) as JsonReport;
        expect(report).toMatchObject({ command: "run", ok: false, exitCode: 1, interrupted: false });
        expect(report.hosts.map((host) => [host.name, host.exitCode, host.stdout, host.stderr, host.attempts])).toEqual([
          ["web-1", 4, "out\n", "err\n", 1],
          ["web-2", 4, "out\n", "err\n", 1],
        ]);
      });

      it.each(["ssh2", "openssh"])("sends its stdin with --stdin to the command on every host, the same bytes to each (%s)", async (transport) => {
        const input = randomBytes(300_000);
        const result = await tunnel(["run", "--transport", transport, ...access, "-H", "web-1,web-2", "--stdin", "--", "sha256sum"], { stdin: input });
        expect(result.code, result.stderr).toBe(ExitCode.OK);
        const digest = createHash("sha256").update(input).digest("hex");
        expect(result.stdout.split("\n").sort()).toEqual(["", `web-1 | ${digest}  -`, `web-2 | ${digest}  -`]);
      });

      it("sends its stdin with --stdin to a script on every host, after the script's own upload", async () => {
        const script = join(dir, "shout.sh");
        await writeFile(script, "#!/bin/sh\ntr a-z A-Z\n");
        const result = await tunnel(["script", ...access, "-H", "web-1,web-2", "--stdin", script], { stdin: "quiet words\n" });
        expect(result.code, result.stderr).toBe(ExitCode.OK);
        expect(result.stdout.split("\n").sort()).toEqual(["", "web-1 | QUIET WORDS", "web-2 | QUIET WORDS"]);
      });

      it("streams its stdin with --stdin to one host, past the limit that holds for several", async () => {
        const size = 70 * 1024 * 1024;
        const chunk = Buffer.alloc(1024 * 1024, 7);
        const input = Readable.from(Array.from({ length: size / chunk.length }, () => chunk));
        const result = await tunnel(["run", ...access, "-H", "web-1", "--stdin", "--", "wc -c"], { stdin: input, timeoutMs: 120_000 });
        expect(result.code, result.stderr).toBe(ExitCode.OK);
        expect(result.stdout).toBe(`web-1 | ${size}\n`);
      });

      it("leaves its stdin unread without --stdin: the command reads nothing, and the input stays for the next reader", async () => {
        // As in `while read host; do tunnel run -H "$host" …; done < hosts`: the loop's input must survive the run.
        const script = `${shellWord(process.execPath)} ${shellWord(BIN)} run ${access.map(shellWord).join(" ")} -H web-1 -- 'wc -c'; echo "after: $(cat)"`;
        const result = await runToEnd("/bin/sh", ["-c", script], { stdin: "still here\n" });
        expect(result.code, result.stderr).toBe(0);
        expect(result.stdout).toBe("web-1 | 0\nafter: still here\n");
      });

      it("draws a progress bar per host on a terminal and verifies the upload", async () => {
        const local = join(dir, "payload.bin");
        const data = randomBytes(6 * 1024 * 1024);
        await writeFile(local, data);
        const remote = `/tmp/tunnel-cli-${randomBytes(4).toString("hex")}-{host}.bin`;
        remoteFiles.push(remote.replace("{host}", "web-1"), remote.replace("{host}", "web-2"));
        const command = [process.execPath, BIN, "put", ...access, "-H", "web-1,web-2", "--verify", "--mode", "0640", local, remote].map(shellWord).join(" ");
        const running = start("script", ["-qec", command, "/dev/null"]);
        const timer = setTimeout(() => running.child.kill("SIGKILL"), 60_000);
        const result = await running.finished.finally(() => clearTimeout(timer));
        const screen = plain(result.stdout);
        expect(result.code, screen).toBe(0);
        expect(screen).toMatch(/web-1 \|█{30}\| 100% \| 6\.0 MiB\/6\.0 MiB/);
        expect(screen).toMatch(/web-2 \|█{30}\| 100% \| 6\.0 MiB\/6\.0 MiB/);
        expect(screen).toMatch(/web-1 \| uploaded 6\.0 MiB to \/tmp\/tunnel-cli-\w+-web-1\.bin in \S+, sha256 verified/);
        for (const name of ["web-1", "web-2"]) {
          const file = remote.replace("{host}", name);
          expect(sha256(await readFile(file))).toBe(sha256(data));
          expect((await stat(file)).mode & 0o777).toBe(0o640);
        }
      });

      it.each(["ssh2", "openssh"])("stops every remote process on SIGINT and exits 130 (%s)", async (transport) => {
        const marker = `300.${randomBytes(3).readUIntBE(0, 3)}`;
        const running = start(process.execPath, [BIN, "run", "--transport", transport, ...access, "-H", "web-1,web-2", "--", `echo started; sleep ${marker}`]);
        try {
          await running.waitFor(/web-1\s+\| started[\s\S]*web-2\s+\| started|web-2\s+\| started[\s\S]*web-1\s+\| started/, 30_000);
          expect(await eventually(async () => (await sleepers(user(), `sleep ${marker}`)).length === 2, 10_000)).toBe(true);
          running.child.kill("SIGINT");
          const result = await running.finished;
          expect(result.code).toBe(ExitCode.INTERRUPTED);
          expect(result.stderr).toContain("interrupted");
          expect(result.stderr).toMatch(/web-1\s+-\s+\S+\s+1\s+ABORTED/);
          expect(await eventually(async () => (await sleepers(user(), `sleep ${marker}`)).length === 0, 10_000)).toBe(true);
        } finally {
          running.child.kill("SIGKILL");
        }
      });

      it.each(["ssh2", "openssh"])("stops the remote process when Ctrl-C is typed on its terminal (%s)", async (transport) => {
        const marker = `300.${randomBytes(3).readUIntBE(0, 3)}`;
        const command = [process.execPath, BIN, "run", "--transport", transport, ...access, "-H", "web-1", "--", `echo started; sleep ${marker}`]
          .map(shellWord)
          .join(" ");
        const running = start("script", ["-qec", command, "/dev/null"]);
        try {
          await running.waitFor(/web-1\s+\| started/, 30_000);
          expect(await eventually(async () => (await sleepers(user(), `sleep ${marker}`)).length === 1, 10_000)).toBe(true);
          running.child.stdin.write("\u0003");
          await running.waitFor(/1 host: 0 ok, 1 failed/, 20_000);
          running.child.stdin.end();
          const result = await running.finished;
          expect(plain(result.stdout)).toMatch(/web-1\s+-\s+\S+\s+1\s+ABORTED/);
          expect(result.code).toBe(ExitCode.INTERRUPTED);
          expect(await eventually(async () => (await sleepers(user(), `sleep ${marker}`)).length === 0, 10_000)).toBe(true);
        } finally {
          running.child.kill("SIGKILL");
        }
      });
    });

    describe("in process", () => {
      it("selects inventory groups, merges their vars into the environment, and honours --env over them (openssh)", async () => {
        const inventory = join(dir, "inventory.yaml");
        await writeFile(
          inventory,
          [
            "vars: { TIER: default, REGION: eu }",
            "hosts:",
            `  app-1: { vars: { ROLE: api } }`,
            `  app-2: {}`,
            `  db-1: { host: 127.0.0.1, port: ${deadPort} }`,
            "groups:",
            "  app: { hosts: [app-1, app-2], vars: { TIER: app, ROLE: worker } }",
            "  db: [db-1]",
          ].join("\n"),
        );
        const streams = io();
        const status = await runCli(
          ["run", "--transport", "openssh", ...access, "-i", inventory, "-g", "app", "-e", "REGION=us", "--", 'echo "$ROLE $TIER $REGION"'],
          streams,
        );
        expect(status, streams.stderr.text).toBe(ExitCode.OK);
        expect(streams.stdout.text.split("\n").sort()).toEqual(["", "app-1 | api app us", "app-2 | worker app us"]);
        expect(streams.stderr.text).not.toContain("db-1");
      });

      it("runs a script file with its arguments as separate words, in --cwd", async () => {
        const script = join(dir, "deploy.sh");
        await writeFile(script, '#!/bin/sh\nset -e\necho "cwd=$(pwd)"\nfor arg in "$@"; do echo "arg=[$arg]"; done\necho "env=$DEPLOY_ENV"\n');
        const streams = io();
        const status = await runCli(
          ["script", ...access, "-H", "web-1", "--cwd", "/tmp", "-e", "DEPLOY_ENV=production", script, "--", "a b", "$HOME", "-x"],
          streams,
        );
        expect(status, streams.stderr.text).toBe(ExitCode.OK);
        expect(streams.stdout.text).toBe("web-1 | cwd=/tmp\nweb-1 | arg=[a b]\nweb-1 | arg=[$HOME]\nweb-1 | arg=[-x]\nweb-1 | env=production\n");
      });

      it("downloads from several hosts into {host} paths, verified, and reports the transfers in --json", async () => {
        const remote = `/tmp/tunnel-cli-get-${randomBytes(4).toString("hex")}.txt`;
        remoteFiles.push(remote);
        await writeFile(remote, "served by sshd\n");
        const streams = io();
        const status = await runCli(
          ["get", ...access, "-H", "web-1,web-2", "--verify", "--json", remote, join(dir, "downloads", "{host}", "copy.txt")],
          streams,
        );
        expect(status, streams.stderr.text).toBe(ExitCode.OK);
        for (const name of ["web-1", "web-2"]) expect(await readFile(join(dir, "downloads", name, "copy.txt"), "utf8")).toBe("served by sshd\n");
        const report = JSON.parse(streams.stdout.text) as JsonReport;
        expect(report.hosts.map((host) => host.transfer)).toEqual([
          { source: remote, destination: join(dir, "downloads", "web-1", "copy.txt"), bytes: 15, files: 1, verified: true, skipped: 0 },
          { source: remote, destination: join(dir, "downloads", "web-2", "copy.txt"), bytes: 15, files: 1, verified: true, skipped: 0 },
        ]);
      });

      it("runs through sudo with the password from --sudo-pass-env and never prints it", async () => {
        const password = sshd.users.pwsudo.password;
        const streams = io({ env: { TUNNEL_TEST_SUDO: password } });
        const target = `${sshd.users.pwsudo.name}@${sshd.host}:${sshd.port}`;
        const status = await runCli(
          ["run", "-I", sshd.clientKeyPath, "--known-hosts", sshd.knownHostsPath, "-H", target, "--sudo-pass-env", "TUNNEL_TEST_SUDO", "-v", "--", "id -un"],
          streams,
        );
        expect(status, streams.stderr.text).toBe(ExitCode.OK);
        expect(streams.stdout.text).toBe(`${target} | root\n`);
        expect(streams.stdout.text + streams.stderr.text).not.toContain(password);
      });

      it("runs through sudo with the password typed at the hidden prompt", async () => {
        const password = sshd.users.pwsudo.password;
        const terminal = new FakeTerminal();
        const stderr = new Capture();
        const write = stderr.write.bind(stderr);
        stderr.write = (chunk: string) => {
          const written = write(chunk);
          if (chunk === "sudo password: ") setImmediate(() => terminal.type(`${password}\r`));
          return written;
        };
        const streams = io({ stdin: terminal, stderr });
        const target = `${sshd.users.pwsudo.name}@${sshd.host}:${sshd.port}`;
        const status = await runCli(
          ["run", "-I", sshd.clientKeyPath, "--known-hosts", sshd.knownHostsPath, "-H", target, "--ask-sudo-pass", "-u", sshd.users.other.name, "--", "id -un"],
          streams,
        );
        expect(status, stderr.text).toBe(ExitCode.OK);
        expect(streams.stdout.text).toBe(`${target} | ${sshd.users.other.name}\n`);
        expect(terminal.modes).toEqual([true, false]);
        expect(streams.stdout.text + stderr.text).not.toContain(password);
      });

      it("lets go of its stdin once a command on one host ended without reading all of it", async () => {
        const stdin = new PassThrough();
        stdin.write("more than the command reads\n");
        const streams = io({ stdin });
        const status = await runCli(["run", ...access, "-H", "web-1", "--stdin", "--", "head -c 4"], streams);
        expect(status, streams.stderr.text).toBe(ExitCode.OK);
        expect(streams.stdout.text).toBe("web-1 | more\n");
        expect(stdin.isPaused()).toBe(true);
        expect(stdin.listenerCount("data")).toBe(0);
      });

      it("refuses --stdin with --redis before reading any input or reaching any host", async () => {
        const stdin = new PassThrough();
        stdin.end("for the workers?\n");
        const streams = io({ stdin });
        const status = await runCli(["run", ...access, "-H", "web-1", "--stdin", "--redis", `redis://127.0.0.1:${deadPort}`, "--", "cat"], streams);
        expect(status).toBe(ExitCode.USAGE);
        expect(streams.stderr.text).toContain("--stdin cannot be combined with --redis");
        expect(stdin.readableLength).toBe("for the workers?\n".length);
      });

      it("stops a command at --timeout and reports TIMEOUT with exit 3", async () => {
        const marker = `30.${randomBytes(3).readUIntBE(0, 3)}`;
        const streams = io();
        const status = await runCli(["run", ...access, "-H", "web-1", "--timeout", "1500ms", "--json", "--", `sleep ${marker}`], streams);
        expect(status).toBe(ExitCode.HOST_FAILED);
        const report = JSON.parse(streams.stdout.text) as JsonReport;
        expect(report.hosts[0]?.error?.code).toBe("TIMEOUT");
        expect(await eventually(async () => (await sleepers(user(), `sleep ${marker}`)).length === 0, 10_000)).toBe(true);
      });
    });
  });
}
