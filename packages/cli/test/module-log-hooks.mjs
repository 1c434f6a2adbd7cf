// Loader hooks for module-log.mjs: each ES module (and each CommonJS file imported from one) is logged as it loads.
import { appendFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

let log;

export function initialize(data) {
  log = data.log;
}

export async function load(url, context, nextLoad) {
  if (url.startsWith("file:")) appendFileSync(log, `${fileURLToPath(url)}\n`);
  return nextLoad(url, context);
}
