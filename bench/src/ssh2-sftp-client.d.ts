// The few members of ssh2-sftp-client the bench calls (the package ships no types).
declare module "ssh2-sftp-client" {
  import type { ConnectConfig } from "ssh2";

  export default class SftpClient {
    connect(config: ConnectConfig): Promise<unknown>;
    fastPut(localPath: string, remotePath: string, options?: Record<string, unknown>): Promise<string>;
    fastGet(remotePath: string, localPath: string, options?: Record<string, unknown>): Promise<string>;
    end(): Promise<boolean>;
  }
}
