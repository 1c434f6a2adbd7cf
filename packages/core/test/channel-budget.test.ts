import { describe, expect, it } from "vitest";
import { BUDGET_RECOVERY_RELEASES, ChannelBudget, ChannelLease, isChannelRefusal, settleLease } from "../src/channel-budget.js";
import { ChannelError, ConnectError } from "../src/errors.js";
import type { Lease } from "../src/pool.js";

describe("ChannelBudget", () => {
  it("lowers the budget to the channels open at a refusal, and never raises it on a refusal", () => {
    const budget = new ChannelBudget(10);
    expect(budget.refused(3)).toBe(true);
    expect(budget.limit).toBe(3);
    expect(budget.refused(5)).toBe(true);
    expect(budget.limit).toBe(3);
  });

  it("gives the connection up only at a second refusal in a row with nothing else open", () => {
    const budget = new ChannelBudget(10);
    expect(budget.refused(0)).toBe(true);
    expect(budget.limit).toBe(1);
    expect(budget.refused(0)).toBe(false);
  });

  it("raises a lowered budget by one after enough clean releases, up to its ceiling", () => {
    const budget = new ChannelBudget(3);
    budget.refused(1);
    for (let release = 1; release < BUDGET_RECOVERY_RELEASES; release++) budget.released();
    expect(budget.limit).toBe(1);
    budget.released();
    expect(budget.limit).toBe(2);
    for (let release = 0; release < 3 * BUDGET_RECOVERY_RELEASES; release++) budget.released();
    expect(budget.limit).toBe(3);
  });
});

describe("settleLease", () => {
  function recordingLease(): Lease & { readonly calls: string[] } {
    const calls: string[] = [];
    return {
      calls,
      connection: undefined as never,
      key: "@h:",
      release: () => calls.push("release"),
      destroy: () => calls.push("destroy"),
      refused: () => calls.push("refused"),
    };
  }

  it("destroys on a connection error, reports a refusal, releases otherwise", () => {
    const refused = new ChannelError("the server refused a channel", { refused: true, retryable: true });
    expect(isChannelRefusal(refused)).toBe(true);
    expect(isChannelRefusal(new ChannelError("channel closed", { refused: false }))).toBe(false);
    const leases = [recordingLease(), recordingLease(), recordingLease()];
    settleLease(leases[0] as Lease, new ConnectError("connect ECONNREFUSED"));
    settleLease(leases[1] as Lease, refused);
    settleLease(leases[2] as Lease, new Error("the command failed"));
    expect(leases.map((lease) => lease.calls)).toEqual([["destroy"], ["refused"], ["release"]]);
  });
});

describe("ChannelLease with a step run inside another", () => {
  const refusal = () => new ChannelError("the server refused a channel", { refused: true });
  function lease(name: string, calls: string[]): Lease {
    return {
      connection: { closed: false, name } as never,
      key: "@h:",
      release: () => calls.push(`release ${name}`),
      destroy: () => calls.push(`destroy ${name}`),
      refused: () => calls.push(`refused ${name}`),
    };
  }

  it("runs the outer step again on the lease the inner step moved to, without handing that one back", async () => {
    const calls: string[] = [];
    const next = ["b", "c"];
    const channel = new ChannelLease(lease("a", calls), { acquire: async () => lease(next.shift() ?? "none", calls), signal: new AbortController().signal });
    let outerRuns = 0;
    const ran = await channel.run(async (connection) => {
      outerRuns += 1;
      if (outerRuns > 1) return (connection as unknown as { name: string }).name;
      // The inner step is refused once on "a" and moves to "b"; then the outer step itself was refused on "a".
      let innerRuns = 0;
      await channel.run(async () => {
        innerRuns += 1;
        if (innerRuns === 1) throw refusal();
      });
      throw refusal();
    });
    expect(ran).toBe("b");
    expect(channel.refusals).toBe(2);
    channel.finish();
    expect(calls).toEqual(["refused a", "release b"]);
  });

  it("fails with the outer step's refusal when the inner step could not take another lease", async () => {
    const calls: string[] = [];
    const outer = refusal();
    const channel = new ChannelLease(lease("a", calls), {
      acquire: () => Promise.reject(new ConnectError("connect ECONNREFUSED")),
      signal: new AbortController().signal,
    });
    const error = await channel
      .run(async () => {
        await channel.run(() => Promise.reject(refusal())).catch(() => undefined);
        expect(channel.usable).toBe(false);
        throw outer;
      })
      .catch((caught: unknown) => caught);
    expect(error).toBe(outer);
    expect(calls).toEqual(["refused a"]);
  });
});
