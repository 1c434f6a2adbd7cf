/** Test helpers: a stream that records what the CLI writes. */
import { EventEmitter } from "node:events";

export class Capture {
  text = "";
  readonly isTTY: boolean;
  readonly columns = 100;
  constructor(isTTY = false) {
    this.isTTY = isTTY;
  }
  write(chunk: string): boolean {
    this.text += chunk;
    return true;
  }
}

/** A pretend terminal on stdin: what `type` sends arrives as keystrokes in raw mode. */
export class FakeTerminal extends EventEmitter {
  readonly isTTY = true;
  rawMode = false;
  readonly modes: boolean[] = [];
  setRawMode(mode: boolean): this {
    this.rawMode = mode;
    this.modes.push(mode);
    return this;
  }
  resume(): this {
    return this;
  }
  pause(): this {
    return this;
  }
  type(text: string): void {
    this.emit("data", Buffer.from(text, "utf8"));
  }
}

/** Drop ANSI escape sequences. */
export function plain(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/\u001b\[[0-9;?]*[A-Za-z]/g, "");
}
