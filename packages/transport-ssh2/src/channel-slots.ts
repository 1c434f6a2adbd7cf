/**
 * A connection's channel slots as the server counts them. sshd frees a closed channel's session slot only in a later
 * turn of its main loop, so an open sent right after a close can be refused at MaxSessions (measured: a third of the
 * opens on a saturated connection). Opens that would exceed `maxChannels` therefore wait until recently closed
 * channels are confirmed gone (one global-request round trip after each close), and an idle SFTP session gives its
 * slot back. Opens within the budget never wait.
 */

/** Who else holds slots on the connection. */
export interface SlotHolders {
  /** Exec processes counted now (opening or running). */
  processCount(): number;
  /** The SFTP session is open or opening. */
  sftpOpen(): boolean;
  /** Close the SFTP session if no transfer uses it; resolves once its slot is free. `undefined` when there is none. */
  closeIdleSftp(): Promise<void> | undefined;
  /** The connection is closed or lost: nothing waits any more. */
  readonly closed: boolean;
  /** One global-request round trip (the connection's ping). */
  roundTrip(): Promise<void>;
}

export class ChannelSlots {
  /** Channels closed on our side whose server-side slot is not yet confirmed free. */
  private closing = 0;
  private waiters: Array<() => void> = [];

  constructor(
    private readonly maxChannels: number,
    private readonly holders: SlotHolders,
  ) {}

  /**
   * Called before an exec channel opens: a promise to wait for when the open would exceed `maxChannels` while a slot
   * is on its way back. Returns undefined — no waiting — whenever there is room.
   */
  beforeOpen(): Promise<void> | undefined {
    if (this.inUse() <= this.maxChannels) return undefined;
    return this.waitForSlot();
  }

  /** An exec channel this connection opened has closed: its server-side slot is free after one round trip. */
  channelClosed(): void {
    if (this.holders.closed) return;
    // With room to spare, a slot that sshd frees a moment late cannot make an open fail: no round trip needed.
    if (this.inUse() + 1 < this.maxChannels) return;
    this.holdClosedSlot();
  }

  /**
   * Count a channel that just closed as holding its server-side slot until one round trip shows it free, even with
   * room to spare: for the connect's own probe, whose slot must not make the caller's first burst of opens fail.
   */
  holdClosedSlot(): void {
    if (this.holders.closed) return;
    this.hold();
    void this.holders
      .roundTrip()
      .catch(() => {})
      .then(() => this.release());
  }

  /** Count a slot the server may still hold for a channel nobody uses any more, until the returned function runs. */
  reserve(): () => void {
    this.hold();
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.release();
    };
  }

  /** A channel is closing: its slot counts until `release()`. */
  hold(): void {
    this.closing++;
  }

  /** A closing channel's slot is free on the server: wake whoever waits for one. */
  release(): void {
    this.closing--;
    const waiters = this.waiters;
    this.waiters = [];
    for (const wake of waiters) wake();
  }

  /** An SFTP channel needs a free slot too: wait for a just-closed exec's slot when the budget is that tight. */
  async forSftp(): Promise<void> {
    while (!this.holders.closed && this.closing > 0 && this.holders.processCount() + this.closing + 1 > this.maxChannels) {
      await this.released();
    }
  }

  private inUse(): number {
    return this.holders.processCount() + this.closing + (this.holders.sftpOpen() ? 1 : 0);
  }

  private released(): Promise<void> {
    return new Promise<void>((resolve) => this.waiters.push(resolve));
  }

  private async waitForSlot(): Promise<void> {
    while (!this.holders.closed && this.inUse() > this.maxChannels) {
      const idle = this.holders.closeIdleSftp();
      if (idle) {
        await idle;
        continue;
      }
      if (this.closing > 0) {
        await this.released();
        continue;
      }
      return; // over budget by the caller's own doing; the server decides
    }
  }
}
