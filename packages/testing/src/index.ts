export { sshdSupport, startSshd } from "./sshd.js";
export { sshClientArgs } from "./ssh-client-args.js";
export { freePort } from "./server-process.js";
export { descendants, listProcessesSync, remoteProcesses } from "./process-table.js";
export type { ProcessEntry } from "./process-table.js";
export type { Sshd, SshdSupport, SshdUser, StartSshdOptions } from "./sshd.js";
export { dropbearSupport, startDropbear } from "./dropbear.js";
export type { Dropbear, DropbearSupport } from "./dropbear.js";
export type { ServerSupport } from "./server-support.js";
export { BUSYBOX_PATH, LOGIN_SHELLS, ensureShellAccounts, missingShellPrograms, shellUserName } from "./shell-users.js";
export type { LoginShell, ShellUser } from "./shell-users.js";
export { createCertificateAuthority, startSshAgent } from "./certificate-authority.js";
export type { CertificateAuthority, CertificateKey, SignOptions, SshAgent } from "./certificate-authority.js";
export { FakeScriptError, FakeTransport } from "./fake-transport.js";
export { FakeConnection } from "./fake-connection.js";
export { localFileCopy } from "./local-file-copy.js";
export type {
  ConnectOutcome,
  FakeCall,
  FakeOutcome,
  FakeProcessIo,
  FakeTransportOptions,
  HeldConnect,
  Scripted,
  SpawnHandler,
  SpawnReply,
  SpawnReplyFunction,
  SpawnResult,
  TransferReplyFunction,
} from "./fake-transport.js";
export { localShellReply } from "./local-shell-reply.js";
export { AWKWARD_SHELL_CHARACTERS, AWKWARD_SHELL_WORDS } from "./awkward-strings.js";
export { errorExamples } from "./error-examples.js";
export { RecordedSpan, RecordingTracer } from "./recording-tracer.js";
export type { RecordedEvent } from "./recording-tracer.js";
export { describeTransportConformance } from "./transport-conformance.js";
export { describeAuthenticationConformance } from "./authentication-conformance.js";
export { describeDropbearConformance } from "./dropbear-conformance.js";
export type { ConformanceAssertion, ConformanceContext, ConformanceGroups, TestRunner } from "./transport-conformance.js";
export { startFaultProxy } from "./fault-proxy.js";
export type { FaultProxy, FaultProxyOptions } from "./fault-proxy.js";
export * as traceScenarios from "./trace-scenarios.js";
export type { Scenario as TraceScenario } from "./trace-scenarios.js";
export { redisServerSupport, startRedisServer } from "./redis-server.js";
export type { RedisServer, RedisServerSupport } from "./redis-server.js";
export { CountingTransport, checkPoolConcurrencyReport, runPoolConcurrencyCase } from "./pool-concurrency-case.js";
export type { PoolConcurrencyCaseOptions, PoolConcurrencyReport } from "./pool-concurrency-case.js";
