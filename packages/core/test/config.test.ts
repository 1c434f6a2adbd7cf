import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { DefaultExecutorConfig, DevelopmentExecutorConfig, ExecutorConfig, ProductionExecutorConfig, validateExecutorConfig } from "../src/config.js";
import type { ExecutorConfigValues } from "../src/config.js";
import { ConfigError, TunnelError } from "../src/errors.js";
import { MAX_TIMEOUT_MS } from "../src/validate.js";

function configError(check: () => unknown): ConfigError {
  try {
    check();
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return error as ConfigError;
  }
  throw new Error("expected a ConfigError");
}

const PRESETS = { DefaultExecutorConfig, DevelopmentExecutorConfig, ProductionExecutorConfig };

/** The presets as the table in config.ts's header documents them: a row a field, a column a preset. */
function documentedPresets(): Record<keyof typeof PRESETS, Record<string, unknown>> {
  const source = readFileSync(new URL("../src/config.ts", import.meta.url), "utf8");
  const cell = (text: string): number | boolean => {
    const value = text.trim();
    if (value === "true" || value === "false") return value === "true";
    const mebibytes = /^(\d+) MiB$/.exec(value);
    return mebibytes ? Number(mebibytes[1]) * 1024 * 1024 : Number(value.replaceAll(" ", ""));
  };
  const columns = Object.keys(PRESETS) as (keyof typeof PRESETS)[];
  const presets = {} as Record<keyof typeof PRESETS, Record<string, unknown>>;
  for (const name of columns) presets[name] = { breaker: {} };
  for (const [, field = "", ...cells] of source.matchAll(/^ \* \| `([\w.]+)` \| ([^|]+) \| ([^|]+) \| ([^|]+) \|/gm)) {
    for (const [index, name] of columns.entries()) {
      const [key = "", inner] = field.split(".");
      const values = inner ? (presets[name].breaker as Record<string, unknown>) : presets[name];
      values[inner ?? key] = cell(cells[index] ?? "");
    }
  }
  return presets;
}

describe("presets", () => {
  // The values are the ones the table at the top of config.ts documents, for every preset (one column each).
  it.each(Object.keys(PRESETS) as (keyof typeof PRESETS)[])("%s has the documented values", (name) => {
    expect(PRESETS[name]().toJSON()).toEqual(documentedPresets()[name]);
  });

  it("Development fails faster than Default, and Production is more patient", () => {
    const dev = DevelopmentExecutorConfig();
    const def = DefaultExecutorConfig();
    const prod = ProductionExecutorConfig();
    for (const field of ["defaultTimeout", "sudoTimeout", "scriptTimeout", "transferTimeout", "maxRetries", "maxConcurrent"] as const) {
      expect(dev[field]).toBeLessThan(def[field]);
      expect(prod[field]).toBeGreaterThan(def[field]);
    }
    expect(dev.retryJitter).toBe(0);
    expect(dev.breaker.cooldown).toBeLessThan(prod.breaker.cooldown);
  });

  it.each(Object.entries(PRESETS))("%s is valid, frozen and a fresh instance each call", (_name, preset) => {
    const config = preset();
    expect(() => config.validate()).not.toThrow();
    expect(() => validateExecutorConfig(config.toJSON())).not.toThrow();
    expect(Object.isFrozen(config)).toBe(true);
    expect(Object.isFrozen(config.breaker)).toBe(true);
    expect(preset()).not.toBe(config);
    expect(preset().toJSON()).toEqual(config.toJSON());
  });
});

describe("ExecutorConfig", () => {
  it("cannot be changed in place", () => {
    const config = DefaultExecutorConfig();
    expect(() => {
      (config as { defaultTimeout: number }).defaultTimeout = 1;
    }).toThrow(TypeError);
    expect(() => {
      (config.breaker as { cooldown: number }).cooldown = 1;
    }).toThrow(TypeError);
    expect(config.defaultTimeout).toBe(30_000);
  });

  it("is not affected by later changes to the values it was built from", () => {
    const values = DefaultExecutorConfig().toJSON() as { breaker: { cooldown: number }; maxRetries: number };
    const config = new ExecutorConfig(values as ExecutorConfigValues);
    values.maxRetries = 50;
    values.breaker.cooldown = 1;
    expect(config.maxRetries).toBe(2);
    expect(config.breaker.cooldown).toBe(30_000);
  });

  it("builds new validated instances with withX(), leaving the original untouched", () => {
    const base = DefaultExecutorConfig();
    const changed = base
      .withTimeout(1_000)
      .withRetries(0)
      .withRetryBackoff(50)
      .withMaxRetryDelay(60)
      .withRetryMultiplier(1.5)
      .withRetryJitter(1)
      .withSudoTimeout(2_000)
      .withScriptTimeout(3_000)
      .withTransferTimeout(4_000)
      .withConnectionReuse(false)
      .withMaxConcurrent(1)
      .withMaxOutputBytes(1024)
      .withBreaker({ cooldown: 5 });
    expect(changed).toBeInstanceOf(ExecutorConfig);
    expect(Object.isFrozen(changed)).toBe(true);
    expect(changed.toJSON()).toEqual({
      defaultTimeout: 1_000,
      maxRetries: 0,
      retryBackoff: 50,
      maxRetryDelay: 60,
      retryMultiplier: 1.5,
      retryJitter: 1,
      sudoTimeout: 2_000,
      scriptTimeout: 3_000,
      transferTimeout: 4_000,
      connectionReuse: false,
      maxConcurrent: 1,
      maxOutputBytes: 1024,
      breaker: { failureThreshold: 5, cooldown: 5 },
    });
    expect(base.toJSON()).toEqual(DefaultExecutorConfig().toJSON());
  });

  it("applies several changes at once with with()", () => {
    const config = DefaultExecutorConfig().with({ maxRetries: 7, breaker: { failureThreshold: 9 } });
    expect(config.maxRetries).toBe(7);
    expect(config.breaker).toEqual({ failureThreshold: 9, cooldown: 30_000 });
  });

  it("validates in every builder", () => {
    const base = DefaultExecutorConfig();
    expect(configError(() => base.withTimeout(0)).field).toBe("defaultTimeout");
    expect(configError(() => base.withRetries(-1)).field).toBe("maxRetries");
    expect(configError(() => base.withBreaker({ failureThreshold: 0 })).field).toBe("breaker.failureThreshold");
    expect(configError(() => base.withMaxRetryDelay(100)).field).toBe("maxRetryDelay");
  });

  it("describes its retries as a RetryStrategy with maxAttempts = maxRetries + 1", () => {
    expect(ProductionExecutorConfig().retryStrategy()).toEqual({
      maxAttempts: 4,
      baseDelay: 1_000,
      maxDelay: 30_000,
      multiplier: 2,
      jitter: 0.3,
    });
    expect(DefaultExecutorConfig().withRetries(0).retryStrategy().maxAttempts).toBe(1);
  });

  it("serialises to its plain values", () => {
    const config = DevelopmentExecutorConfig();
    expect(JSON.parse(JSON.stringify(config))).toEqual(config.toJSON());
    expect(new ExecutorConfig(JSON.parse(JSON.stringify(config)))).toEqual(config);
  });
});

describe("validateExecutorConfig", () => {
  const valid = () => DefaultExecutorConfig().toJSON() as unknown as Record<string, unknown>;

  it.each([
    ["defaultTimeout", 0, "positive finite number of milliseconds"],
    ["defaultTimeout", -1, "positive"],
    ["defaultTimeout", Number.NaN, "positive"],
    ["defaultTimeout", "30s", 'got "30s"'],
    ["defaultTimeout", MAX_TIMEOUT_MS + 1, "at most"],
    ["maxRetries", 1.5, "integer from 0 to 100"],
    ["maxRetries", 101, "integer from 0 to 100"],
    ["retryBackoff", -5, "non-negative"],
    ["maxRetryDelay", Number.POSITIVE_INFINITY, "non-negative finite"],
    ["retryMultiplier", 0.9, "≥ 1"],
    ["retryMultiplier", Number.POSITIVE_INFINITY, "≥ 1"],
    ["retryJitter", 1.01, "fraction from 0 to 1"],
    ["retryJitter", -0.1, "fraction from 0 to 1"],
    ["sudoTimeout", 0, "positive"],
    ["scriptTimeout", null, "got null"],
    ["transferTimeout", {}, "got an object"],
    ["connectionReuse", "yes", "true or false"],
    ["maxConcurrent", 0, "integer ≥ 1"],
    ["maxOutputBytes", 0.5, "integer ≥ 1"],
    ["breaker", [], "got an array"],
  ])("names %s when it is %j", (field, value, message) => {
    const error = configError(() => validateExecutorConfig({ ...valid(), [field]: value }));
    expect(error.field).toBe(field);
    expect(error.message).toContain(message);
    expect(error).toMatchObject({ code: "CONFIG", phase: "validate", retryable: false });
    expect(TunnelError.is(error)).toBe(true);
  });

  it("names the breaker's fields", () => {
    expect(configError(() => validateExecutorConfig({ ...valid(), breaker: { failureThreshold: 0, cooldown: 1 } })).field).toBe("breaker.failureThreshold");
    expect(configError(() => validateExecutorConfig({ ...valid(), breaker: { failureThreshold: 1, cooldown: 0 } })).field).toBe("breaker.cooldown");
    expect(configError(() => validateExecutorConfig({ ...valid(), breaker: { failureThreshold: 1, cooldown: 1, cooldwn: 2 } })).field).toBe("breaker.cooldwn");
  });

  it("requires maxRetryDelay ≥ retryBackoff", () => {
    const error = configError(() => validateExecutorConfig({ ...valid(), retryBackoff: 500, maxRetryDelay: 499 }));
    expect(error.field).toBe("maxRetryDelay");
    expect(error.message).toContain("at least retryBackoff");
  });

  it("rejects unknown fields (typos) and missing ones", () => {
    expect(configError(() => validateExecutorConfig({ ...valid(), defaultTimout: 5 })).message).toMatch(
      /^defaultTimout: is not an option of ExecutorConfig \(did you mean defaultTimeout\?\)/,
    );
    const { sudoTimeout: _dropped, ...missing } = valid();
    expect(configError(() => validateExecutorConfig(missing)).message).toBe("sudoTimeout: is required");
  });

  it("rejects a non-object", () => {
    for (const config of [null, 5, "config", []]) {
      expect(configError(() => validateExecutorConfig(config)).field).toBe("config");
    }
  });

  it("makes the constructor throw for invalid values", () => {
    expect(configError(() => new ExecutorConfig({ ...DefaultExecutorConfig().toJSON(), maxConcurrent: 0 })).field).toBe("maxConcurrent");
  });
});
