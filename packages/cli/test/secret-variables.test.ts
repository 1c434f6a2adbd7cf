import { describe, expect, it } from "vitest";
import { secretVariables, takeSecretVariables } from "../src/secret-variables.js";

describe("secret variables", () => {
  it("finds the variables --sudo-pass-env names, in both spellings, up to --", () => {
    expect(secretVariables(["run", "-H", "web-1", "--sudo-pass-env", "DEPLOY_PW", "uptime"])).toEqual(["DEPLOY_PW"]);
    expect(secretVariables(["run", "--sudo-pass-env=A", "--sudo-pass-env", "B", "--", "--sudo-pass-env", "C"])).toEqual(["A", "B"]);
    expect(secretVariables(["run", "--sudo-pass-env"])).toEqual([]);
  });

  it("removes them from the environment it is given and keeps them in the copy it returns", () => {
    const env: NodeJS.ProcessEnv = { DEPLOY_PW: "hunter2", PATH: "/usr/bin" };
    const copy = takeSecretVariables(["run", "--sudo-pass-env", "DEPLOY_PW"], env);
    expect(env).toEqual({ PATH: "/usr/bin" });
    expect(copy).toEqual({ DEPLOY_PW: "hunter2", PATH: "/usr/bin" });
  });
});
