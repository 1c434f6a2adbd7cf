/**
 * `tunnel demo`: the usage examples against a throwaway embedded SSH server.
 */
import type { OutputStream } from "./output.js";

export interface DemoOptions {
  readonly stdout: OutputStream;
  readonly stderr: OutputStream;
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly format: "pretty" | "json";
  readonly signal?: AbortSignal;
}

export async function runDemo(options: DemoOptions): Promise<number> {
  options.stderr.write("tunnel demo: the embedded SSH server is not available in this build\n");
  return 4;
}
