/** Publishes a run already made: `node dist/publish-main.js [results.json]` (default: the latest run). */
import { readFileSync } from "node:fs";
import { LATEST, publish, type Run } from "./publish.js";

const file = process.argv[2] ?? LATEST;
const written = publish(JSON.parse(readFileSync(file, "utf8")) as Run);
process.stderr.write(`published ${file} into ${written.join(" and ")}\n`);
