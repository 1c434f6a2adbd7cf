// Preloaded with `node --import`: writes every file the process loads to the file named by TUNNEL_MODULE_LOG, one
// path a line. ES modules are seen by a loader hook as they load; CommonJS files (which load one another without
// the hooks) are read from require's cache when the process exits.
import { appendFileSync } from "node:fs";
import { createRequire, register } from "node:module";

const log = process.env.TUNNEL_MODULE_LOG;
if (log === undefined) throw new Error("module-log.mjs needs TUNNEL_MODULE_LOG");
register("./module-log-hooks.mjs", import.meta.url, { data: { log } });
const cache = createRequire(import.meta.url).cache;
process.on("exit", () => {
  appendFileSync(
    log,
    Object.keys(cache)
      .map((path) => `${path}\n`)
      .join(""),
  );
});
