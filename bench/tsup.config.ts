import { defineConfig } from "tsup";

// The bench runs against the packages' built output: every dependency stays an import resolved by Node at run time.
export default defineConfig({
  entry: ["src/main.ts", "src/publish-main.ts"],
  format: ["esm"],
  outDir: "dist",
  target: "node20",
  sourcemap: true,
  clean: true,
  silent: true,
  external: [/^@tunnel-sh\//, "ssh2", "node-ssh", "ssh2-sftp-client", "ioredis"],
});
