/**
 * New connections per second, one after another: TCP connect, key exchange, public-key authentication, close.
 */
import { join } from "node:path";
import { freshSsh, makeTransport, nodeSshConnect, rawConnect, rawEnd } from "../clients.js";
import { interleaved, type Context } from "../context.js";
import { runChecked, sshOptions } from "../environment.js";
import { timed } from "../stats.js";

const SECTION = "connect: new connections per second (sequential; time to a usable connection, close not timed)";

export async function connectRate(context: Context): Promise<void> {
  const { environment: server, options } = context;
  const rounds = options.quick ? 6 : 30;
  const target = { host: server.host, port: server.port, user: server.user };
  const ssh2 = makeTransport("ssh2", server);
  const openssh = makeTransport("openssh", server);
  const socket = join(server.localDir, "connect.sock");
  // Only the connect is timed; each connection is closed before the next one starts.
  const perSecond =
    <T>(open: () => Promise<T>, close: (connection: T) => Promise<unknown>) =>
    async (): Promise<number> => {
      let connection: T | undefined;
      const ms = await timed(async () => (connection = await open()));
      await close(connection as T);
      return 1000 / ms;
    };
  const tools: Array<readonly [string, () => Promise<number>]> = [
    [
      "tunnel ssh2 transport",
      perSecond(
        () => ssh2.connect(target),
        (connection) => connection.close(),
      ),
    ],
    ["raw ssh2", perSecond(() => rawConnect(server, true), rawEnd)],
    [
      "node-ssh",
      perSecond(
        () => nodeSshConnect(server),
        async (ssh) => ssh.dispose(),
      ),
    ],
    [
      "tunnel openssh transport (ControlMaster)",
      perSecond(
        () => openssh.connect(target),
        (connection) => connection.close(),
      ),
    ],
    [
      "ssh -fNM (ControlMaster up)",
      perSecond(
        // -f: ssh goes to the background once authenticated, so its exit marks a usable master.
        () => runChecked("ssh", [...sshOptions(server), "-f", "-N", "-M", "-S", socket, "-p", String(server.port), `${server.user}@${server.host}`]),
        () => runChecked("ssh", ["-S", socket, "-O", "exit", "x"]),
      ),
    ],
    [
      "fresh ssh `true` (connect + exec + close)",
      perSecond(
        () => freshSsh(server, "true"),
        async () => undefined,
      ),
    ],
  ];
  await interleaved(2, tools);
  const samples = await interleaved(rounds, tools);
  const against: Record<string, string[]> = {
    "tunnel ssh2 transport": ["raw ssh2"],
    "node-ssh": ["raw ssh2"],
    "tunnel openssh transport (ControlMaster)": ["ssh -fNM (ControlMaster up)"],
  };
  for (const [tool, values] of samples) {
    context.record({ section: SECTION, case: `${rounds} sequential connects`, tool, unit: "conn/s", samples: values, against: against[tool] ?? [] });
  }
}
