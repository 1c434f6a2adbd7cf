// ESLint for the whole workspace: rules that catch bugs (promises nobody awaits or handles, unused code, `any`
// leaking into library code), not matters of taste; layout is Prettier's job (`pnpm format`). The project's own
// habits that a script can check (file names, focused tests, printing libraries) live in scripts/lint.mjs.
import js from "@eslint/js";
import { defineConfig, globalIgnores } from "eslint/config";
import globals from "globals";
import tseslint from "typescript-eslint";

/** Files inside a tsconfig project: linted with type information. */
const TYPED = ["packages/*/src/**/*.ts", "packages/*/test/**/*.ts", "integration/test/**/*.ts", "bench/src/**/*.ts", "bench/tsup.config.ts"];
const TESTS = ["packages/*/test/**", "packages/*/bench/**", "integration/test/**"];

export default defineConfig(
  globalIgnores([
    "**/node_modules/",
    "**/dist/",
    "**/.tsbuild/",
    "**/coverage/",
    "**/.turbo/",
    "bench/results/",
    // Deliberately shaped workspaces for the dependency and layering checks' own tests.
    "scripts/test/fixtures/",
  ]),
  {
    linterOptions: { reportUnusedDisableDirectives: "error" },
    languageOptions: { globals: globals.node },
  },
  js.configs.recommended,
  tseslint.configs.recommended,
  {
    files: TYPED,
    extends: [tseslint.configs.recommendedTypeChecked],
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
  },
  {
    rules: {
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_", caughtErrors: "none" }],
      // Taste: a regular expression with two spaces is as clear as one with ` {2}`.
      "no-regex-spaces": "off",
      // Walking a span's parents starts from `this`; the alias is the loop variable, not a lost `this`.
      "@typescript-eslint/no-this-alias": "off",
    },
  },
  {
    files: TYPED,
    rules: {
      // An async function without `await` still turns a synchronous throw into a rejection, which implementations of
      // the Promise-returning interfaces (Transport, Connection, Pool) rely on.
      "@typescript-eslint/require-await": "off",
      // Errors are forwarded as caught (`unknown`); after `!== undefined` TypeScript narrows them to `{}`, which these
      // two rules cannot tell from a thrown string.
      "@typescript-eslint/only-throw-error": "off",
      "@typescript-eslint/prefer-promise-reject-errors": "off",
      // `String(value)` of an unknown value is the deliberate last resort when describing errors; template literals
      // are checked by restrict-template-expressions.
      "@typescript-eslint/no-base-to-string": "off",
      // An assertion that changes nothing is harmless, and the rule takes an all-optional object type for `{}`: it
      // would strip the casts validate.ts needs to read the fields of an `unknown` AbortSignal or stream.
      "@typescript-eslint/no-unnecessary-type-assertion": "off",
    },
  },
  {
    files: TESTS,
    rules: {
      // Tests parse JSON lines, pass deliberately wrong options and use expect's matchers, which are typed `any`.
      "@typescript-eslint/no-explicit-any": "off",
      "@typescript-eslint/no-unsafe-argument": "off",
      "@typescript-eslint/no-unsafe-assignment": "off",
      "@typescript-eslint/no-unsafe-member-access": "off",
      "@typescript-eslint/no-unsafe-return": "off",
      // The OpenTelemetry SDK's types see the API's CommonJS declarations and the (ESM) tests its ESM ones, so one
      // SpanStatusCode is declared twice and comparing the two looks like comparing unrelated enums.
      "@typescript-eslint/no-unsafe-enum-comparison": "off",
    },
  },
);
