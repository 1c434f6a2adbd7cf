import { describe, expect, it } from "vitest";
import { BUDGET_RECOVERY_RELEASES, ChannelBudget, isChannelRefusal, settleLease } from "../src/channel-budget.js";
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
