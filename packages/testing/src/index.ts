export { remoteProcesses, sshdSupport, startSshd } from "./sshd.js";
export type { Sshd, SshdSupport, SshdUser, StartSshdOptions } from "./sshd.js";
