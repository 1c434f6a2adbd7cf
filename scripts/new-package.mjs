// Creates the standard files of a workspace package: node scripts/new-package.mjs <folder> "<description>"
import { mkdirSync, writeFileSync, existsSync } from "node:fs";
import { join } from "node:path";
import { CORE_PEER_RANGE, NODE_RANGE, packageMetadata } from "./package-metadata.mjs";

const [folder, description = ""] = process.argv.slice(2);
if (!folder) throw new Error("usage: new-package.mjs <folder> <description>");
const dir = join("packages", folder);
const write = (file, text) => {
  const path = join(dir, file);
  if (!existsSync(path)) writeFileSync(path, text);
};
mkdirSync(join(dir, "src"), { recursive: true });
mkdirSync(join(dir, "test"), { recursive: true });
const isCore = folder === "core";
write(
  "package.json",
  JSON.stringify(
    {
      name: `@tunnel-sh/${folder}`,
      version: "0.0.0",
      description,
      license: "MIT",
      type: "module",
      sideEffects: false,
      engines: { node: NODE_RANGE },
      exports: {
        ".": {
          "@tunnel-sh/source": "./src/index.ts",
          types: "./dist/index.d.ts",
          default: "./dist/index.js",
        },
        "./package.json": "./package.json",
      },
      main: "./dist/index.js",
      types: "./dist/index.d.ts",
      files: ["dist", "src", "README.md", "CHANGELOG.md"],
      scripts: {
        build: "tsup",
        test: "vitest run",
        check: "publint --strict && attw --pack . --profile esm-only",
      },
      ...(isCore
        ? {}
        : {
            peerDependencies: { "@tunnel-sh/core": CORE_PEER_RANGE },
            devDependencies: { "@tunnel-sh/core": "workspace:*" },
          }),
    },
    null,
    2,
  ) + "\n",
);
write(
  "tsconfig.json",
  JSON.stringify(
    {
      extends: "../../tsconfig.base.json",
      compilerOptions: { outDir: ".tsbuild", rootDir: ".", emitDeclarationOnly: true },
      include: ["src", "test"],
      references: isCore ? [] : [{ path: "../core" }],
    },
    null,
    2,
  ) + "\n",
);
write(
  "tsup.config.ts",
  `import { defineConfig } from "tsup";

export default defineConfig({
  entry: ["src/index.ts"],
  format: ["esm"],
  // The package tsconfig is a composite project for \`tsc --build\`; declaration bundling needs it off.
  dts: { compilerOptions: { composite: false, incremental: false, customConditions: [] } },
  sourcemap: true,
  clean: true,
  target: "node20",
});
`,
);
write(
  "vitest.config.ts",
  `import { defineConfig } from "vitest/config";
import { sharedTestConfig } from "../../vitest.shared.js";

export default defineConfig(sharedTestConfig(import.meta.dirname));
`,
);
write("CHANGELOG.md", `# @tunnel-sh/${folder}\n`);
write("README.md", `# @tunnel-sh/${folder}\n\n${description}\n`);
write("src/index.ts", "export {};\n");
// Publishing metadata (repository, keywords, publishConfig, LICENSE) comes from the one script that checks it.
const problems = packageMetadata(process.cwd(), { write: true });
if (problems.length) throw new Error(problems.join("\n"));
console.log(`created ${dir}`);
