import { describe, expect, it } from "vitest";
import type { CircuitStateChange } from "../src/breaker.js";
import { CircuitBreaker, CircuitBreakerRegistry, breakerOutcome } from "../src/breaker.js";
import {
  AbortError,
  AuthenticationError,
  ChannelError,
  CircuitOpenError,
  ConnectError,
  HostKeyError,
  PoolTimeoutError,
  SudoError,
  TimeoutError,
  TunnelError,
  ValidationError,
} from "../src/errors.js";

function setup(failureThreshold = 3, cooldown = 1000) {
  let now = 10_000;
  const changes: CircuitStateChange[] = [];
  const breaker = new CircuitBreaker("deploy@web-1:22", {
    failureThreshold,
    cooldown,
    now: () => now,
    onStateChange: (change) => changes.push(change),
  });
  return {
    breaker,
    changes,
    advance: (ms: number) => {
      now += ms;
    },
    get now() {
      return now;
    },
  };
}

const refused = () => new ConnectError("connect ECONNREFUSED 127.0.0.1:22");

function failTimes(breaker: CircuitBreaker, times: number): void {
  for (let i = 0; i < times; i++) breaker.acquire().failure(refused());
}

function openError(breaker: CircuitBreaker): CircuitOpenError {
  try {
    breaker.acquire({ host: "web-1", user: "deploy", port: 22 });
  } catch (error) {
    expect(error).toBeInstanceOf(CircuitOpenError);
    return error as CircuitOpenError;
  }
  throw new Error("expected the breaker to refuse");
}

describe("breakerOutcome", () => {
  it.each([
    [new ConnectError("refused"), "failure"],
    [new ConnectError("lost", { lost: true }), "failure"],
    [new AuthenticationError("denied"), "success"],
    [new HostKeyError("changed"), "success"],
    [new SudoError("no", { reason: "not-allowed" }), "success"],
    [new ChannelError("open failed"), "success"],
    [new TimeoutError("slow"), "neutral"],
    [new AbortError(), "neutral"],
    [new ValidationError("port", "bad"), "neutral"],
    [new PoolTimeoutError("busy"), "neutral"],
    [new CircuitOpenError("open", { retryAfterMs: 1 }), "neutral"],
    [new Error("bug"), "neutral"],
  ])("%s counts as %s", (error, outcome) => {
    expect(breakerOutcome(error)).toBe(outcome);
  });
});

describe("CircuitBreaker", () => {
  it("starts closed and lets operations through", () => {
    const { breaker } = setup();
    expect(breaker.state).toBe("closed");
    expect(breaker.acquire().probe).toBe(false);
    expect(breaker.retryAfterMs).toBe(0);
  });

  it("opens after N consecutive connection failures, not before", () => {
    const { breaker, changes } = setup(3);
    failTimes(breaker, 2);
    expect(breaker.state).toBe("closed");
    expect(breaker.failures).toBe(2);
    const third = refused();
    breaker.acquire().failure(third);
    expect(breaker.state).toBe("open");
    expect(changes).toEqual([{ key: "deploy@web-1:22", from: "closed", to: "open", failures: 3, at: 10_000, error: third }]);
  });

  it("resets the count on a success, so failures must be consecutive", () => {
    const { breaker } = setup(3);
    failTimes(breaker, 2);
    breaker.acquire().success();
    expect(breaker.failures).toBe(0);
    failTimes(breaker, 2);
    expect(breaker.state).toBe("closed");
  });

  it("is not tripped by non-zero exits, authentication or host-key failures: the host answered", () => {
    const { breaker } = setup(2);
    for (const error of [new AuthenticationError("denied"), new HostKeyError("changed"), new AuthenticationError("again")]) {
      breaker.acquire().settle(error);
    }
    expect(breaker.state).toBe("closed");
    breaker.acquire().failure(refused());
    breaker.acquire().settle(new AuthenticationError("denied"));
    breaker.acquire().failure(refused());
    expect(breaker.state).toBe("closed");
  });

  it("neither counts nor resets on neutral outcomes (timeouts, aborts)", () => {
    const { breaker } = setup(2);
    breaker.acquire().failure(refused());
    breaker.acquire().settle(new TimeoutError("slow"));
    breaker.acquire().settle(new AbortError());
    breaker.acquire().neutral();
    expect(breaker.failures).toBe(1);
    breaker.acquire().settle(new ConnectError("lost", { lost: true }));
    expect(breaker.state).toBe("open");
  });

  it("fails fast while open with CircuitOpenError carrying the time left", () => {
    const { breaker, advance } = setup(1, 1000);
    failTimes(breaker, 1);
    advance(300);
    const error = openError(breaker);
    expect(error).toMatchObject({ code: "CIRCUIT_OPEN", retryable: false, phase: "connect", retryAfterMs: 700 });
    expect(error.target).toEqual({ host: "web-1", user: "deploy", port: 22 });
    expect(error.message).toContain("deploy@web-1:22");
    expect(TunnelError.is(error)).toBe(true);
    expect(breaker.retryAfterMs).toBe(700);
  });

  it("moves to half-open after the cooldown and lets exactly one probe through", () => {
    const { breaker, changes, advance } = setup(1, 1000);
    failTimes(breaker, 1);
    advance(999);
    expect(breaker.state).toBe("open");
    advance(1);
    expect(breaker.state).toBe("half-open");
    expect(changes.map(({ from, to }) => `${from}->${to}`)).toEqual(["closed->open", "open->half-open"]);
    const probe = breaker.acquire();
    expect(probe.probe).toBe(true);
    const second = openError(breaker);
    expect(second.retryAfterMs).toBe(0);
    expect(second.message).toContain("probe is in flight");
    probe.success();
  });

  it("closes when the probe succeeds", () => {
    const { breaker, changes, advance } = setup(2, 1000);
    failTimes(breaker, 2);
    advance(1000);
    breaker.acquire().success();
    expect(breaker.state).toBe("closed");
    expect(breaker.failures).toBe(0);
    expect(changes.at(-1)).toMatchObject({ from: "half-open", to: "closed" });
    expect(breaker.acquire().probe).toBe(false);
  });

  it("opens again for a full cooldown when the probe fails", () => {
    const { breaker, changes, advance } = setup(2, 1000);
    failTimes(breaker, 2);
    advance(1500);
    breaker.acquire().failure(refused());
    expect(breaker.state).toBe("open");
    expect(changes.at(-1)).toMatchObject({ from: "half-open", to: "open", at: 11_500 });
    advance(999);
    expect(openError(breaker).retryAfterMs).toBe(1);
    advance(1);
    expect(breaker.acquire().probe).toBe(true);
  });

  it("frees the probe slot when the probe says nothing about the host", () => {
    const { breaker, advance } = setup(1, 1000);
    failTimes(breaker, 1);
    advance(1000);
    breaker.acquire().settle(new AbortError());
    expect(breaker.state).toBe("half-open");
    const next = breaker.acquire();
    expect(next.probe).toBe(true);
    next.settle(new AuthenticationError("denied"));
    expect(breaker.state).toBe("closed");
  });

  it("ignores late outcomes of operations admitted before the breaker changed state", () => {
    const { breaker, advance } = setup(1, 1000);
    const slowSuccess = breaker.acquire();
    const slowFailure = breaker.acquire();
    breaker.acquire().failure(refused());
    expect(breaker.state).toBe("open");
    slowSuccess.success();
    expect(breaker.state).toBe("open");
    advance(1000);
    const probe = breaker.acquire();
    slowFailure.failure(refused());
    expect(breaker.state).toBe("half-open");
    probe.success();
    expect(breaker.state).toBe("closed");
  });

  it("counts each permit once", () => {
    const { breaker } = setup(2);
    const permit = breaker.acquire();
    permit.failure(refused());
    permit.failure(refused());
    permit.success();
    expect(breaker.failures).toBe(1);
  });

  it("counts every failed attempt of one operation, and its final error not again", () => {
    const { breaker } = setup(3);
    const permit = breaker.acquire();
    expect(permit.attemptFailed(refused())).toBe(true);
    expect(permit.attemptFailed(new ChannelError("refused by the server"))).toBe(true);
    expect(breaker.failures).toBe(1);
    expect(permit.attemptFailed(refused())).toBe(true);
    expect(breaker.failures).toBe(2);
    permit.settle(refused());
    expect(breaker.failures).toBe(2);
    expect(breaker.state).toBe("closed");
  });

  it("opens on the attempt that reaches the threshold and tells that operation to stop retrying", () => {
    const { breaker } = setup(3);
    const first = breaker.acquire();
    const second = breaker.acquire();
    expect(first.attemptFailed(refused())).toBe(true);
    expect(second.attemptFailed(refused())).toBe(true);
    expect(first.attemptFailed(refused())).toBe(false);
    expect(breaker.state).toBe("open");
    // The other operation's next attempt would run into an open breaker: it stops too, and counts nothing more.
    expect(second.attemptFailed(refused())).toBe(false);
    expect(breaker.failures).toBe(3);
    expect(() => breaker.acquire()).toThrow(CircuitOpenError);
  });

  it("a probe whose attempt fails opens the breaker again and stops its retries", () => {
    const { breaker, advance } = setup(1, 1000);
    breaker.acquire().failure(refused());
    advance(1000);
    const probe = breaker.acquire();
    expect(probe.probe).toBe(true);
    expect(probe.attemptFailed(new ChannelError("refused by the server"))).toBe(true);
    expect(probe.attemptFailed(refused())).toBe(false);
    expect(breaker.state).toBe("open");
  });

  it("applies new settings to later decisions", () => {
    const { breaker, advance } = setup(5, 1000);
    breaker.configure({ failureThreshold: 1, cooldown: 50 });
    failTimes(breaker, 1);
    expect(breaker.state).toBe("open");
    advance(50);
    expect(breaker.state).toBe("half-open");
  });

  it("can be reset to closed by an operator", () => {
    const { breaker, changes } = setup(1);
    failTimes(breaker, 1);
    breaker.reset();
    expect(breaker.state).toBe("closed");
    expect(breaker.failures).toBe(0);
    expect(changes.at(-1)).toMatchObject({ from: "open", to: "closed" });
  });

  it("survives a throwing listener", () => {
    const breaker = new CircuitBreaker("k", {
      failureThreshold: 1,
      cooldown: 10,
      onStateChange: () => {
        throw new Error("listener bug");
      },
    });
    breaker.acquire().failure(refused());
    expect(breaker.state).toBe("open");
  });

  it.each([
    [{ failureThreshold: 0, cooldown: 10 }, /failureThreshold/],
    [{ failureThreshold: 1.5, cooldown: 10 }, /failureThreshold/],
    [{ failureThreshold: 1, cooldown: 0 }, /cooldown/],
    [{ failureThreshold: 1, cooldown: Number.POSITIVE_INFINITY }, /cooldown/],
  ])("refuses settings %j", (settings, message) => {
    expect(() => new CircuitBreaker("k", settings)).toThrow(message);
    expect(() => new CircuitBreakerRegistry(settings)).toThrow(message);
  });

  it("uses Date.now by default", () => {
    const breaker = new CircuitBreaker("k", { failureThreshold: 1, cooldown: 60_000 });
    breaker.acquire().failure(refused());
    expect(breaker.retryAfterMs).toBeGreaterThan(59_000);
    expect(breaker.retryAfterMs).toBeLessThanOrEqual(60_000);
  });
});

describe("CircuitBreakerRegistry", () => {
  function registry() {
    let now = 0;
    const changes: CircuitStateChange[] = [];
    const breakers = new CircuitBreakerRegistry({
      failureThreshold: 2,
      cooldown: 100,
      now: () => now,
      onStateChange: (change) => changes.push(change),
    });
    return { breakers, changes, advance: (ms: number) => (now += ms) };
  }

  it("keeps one independent breaker per key", () => {
    const { breakers, changes } = registry();
    expect(breakers.state("a@h1:22")).toBe("closed");
    breakers.acquire("a@h1:22").failure(refused());
    breakers.acquire("a@h1:22").failure(refused());
    expect(breakers.state("a@h1:22")).toBe("open");
    expect(breakers.state("a@h2:22")).toBe("closed");
    expect(breakers.acquire("a@h2:22").probe).toBe(false);
    expect(() => breakers.acquire("a@h1:22", { host: "h1" })).toThrow(CircuitOpenError);
    expect(breakers.get("a@h1:22")).toBe(breakers.get("a@h1:22"));
    expect(changes.map(({ key, to }) => `${key}:${to}`)).toEqual(["a@h1:22:open"]);
  });

  it("lists every known key's state, moving open ones to half-open after the cooldown", () => {
    const { breakers, advance } = registry();
    breakers.acquire("x").success();
    breakers.acquire("y").failure(refused());
    breakers.acquire("y").failure(refused());
    expect(breakers.states()).toEqual({ x: "closed", y: "open" });
    advance(100);
    expect(breakers.states()).toEqual({ x: "closed", y: "half-open" });
  });

  it("applies new settings to existing and future breakers", () => {
    const { breakers } = registry();
    breakers.get("old");
    breakers.configure({ failureThreshold: 1, cooldown: 100 });
    breakers.acquire("old").failure(refused());
    breakers.acquire("new").failure(refused());
    expect(breakers.states()).toEqual({ old: "open", new: "open" });
    expect(() => breakers.configure({ failureThreshold: 0, cooldown: 1 })).toThrow(RangeError);
  });

  it("forgets a key on delete", () => {
    const { breakers } = registry();
    breakers.acquire("k").failure(refused());
    breakers.acquire("k").failure(refused());
    expect(breakers.delete("k")).toBe(true);
    expect(breakers.state("k")).toBe("closed");
    expect(breakers.delete("k")).toBe(false);
  });
});
