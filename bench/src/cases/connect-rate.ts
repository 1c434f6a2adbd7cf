/**
 * New connections per second, one after another: TCP connect, key exchange, public-key authentication, close.
 */
import { join } from "node:path";
import { freshSsh, makeTransport, nodeSshConnect, rawConnect, rawEnd } from "../clients.js";
import { interleaved, type Context } from "../context.js";
import { runChecked, sshOptions } from "../environment.js";
import { timed } from "../stats.js";

const SECTION = "connect: new connections per second (sequential, connect + close)";

export async function connectRate(context: Context): Promise<void> {
  const { environment: server, options } = context;
  const rounds = options.quick ? 6 : 30;
  const target = { host: server.host, port: server.port, user: server.user };
  const ssh2 = makeTransport("ssh2", server);
  const openssh = makeTransport("openssh", server);
  const socket = join(server.localDir, "connect.sock");
  const perSecond = (measure: () => Promise<unknown>) => async () => 1000 / (await timed(measure));
  const tools: Array<readonly [string, () => Promise<number>]> = [
    ["tunnel ssh2 transport", perSecond(async () => (await ssh2.connect(target)).close())],
    ["raw ssh2", perSecond(async () => rawEnd(await rawConnect(server, true)))],
    ["node-ssh", perSecond(async () => (await nodeSshConnect(server)).dispose())],
    ["tunnel openssh transport (ControlMaster)", perSecond(async () => (await openssh.connect(target)).close())],
    [
      "ssh -fNM (ControlMaster) + -O exit",
      perSecond(async () => {
        await runChecked("ssh", [...sshOptions(server), "-f", "-N", "-M", "-S", socket, "-p", String(server.port), `${server.user}@${server.host}`]);
        await runChecked("ssh", ["-S", socket, "-O", "exit", "x"]);
      }),
    ],
    ["fresh ssh `true`", perSecond(async () => freshSsh(server, "true"))],
  ];
  await interleaved(2, tools);
  const samples = await interleaved(rounds, tools);
  const against: Record<string, string[]> = {
    "tunnel ssh2 transport": ["raw ssh2"],
    "node-ssh": ["raw ssh2"],
    "tunnel openssh transport (ControlMaster)": ["ssh -fNM (ControlMaster) + -O exit"],
  };
  for (const [tool, values] of samples) {
    context.record({ section: SECTION, case: `${rounds} sequential connects`, tool, unit: "conn/s", samples: values, against: against[tool] ?? [] });
  }
}
