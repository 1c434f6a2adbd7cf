import { startEnvironment, serverInfo } from "../src/environment.js";
import { makeStack } from "../src/clients.js";
const env = await startEnvironment();
const server = serverInfo(env);
const hosts = Array.from({ length: 200 }, (_, i) => `bench-${String(i + 1).padStart(3, "0")}`);
for (let round = 0; round < 3; round++) {
  const stack = makeStack("openssh", server, { sshConfig: true, maxConcurrent: 32 });
  const cpu0 = process.cpuUsage(); const t0 = performance.now();
  const results = await Promise.allSettled(hosts.map((host) => stack.executor.runCommand({ host, cmd: "true" })));
  const t1 = performance.now(); const cpu = process.cpuUsage(cpu0);
  await stack.close();
  console.log(`round ${round}: ${(200 / ((t1 - t0) / 1000)).toFixed(2)} hosts/s, node cpu ${((cpu.user + cpu.system) / 1000).toFixed(0)} ms, failures ${results.filter((r) => r.status === "rejected").length}`);
}
await env.close();
process.exit(0);
