// Reads exact byte counts from bytes pushed in from a socket (used for the
// NBD handshake). A closed or failed socket fails every pending and later read.
import type { Socket } from 'node:net';

export class SocketReader {
  private chunks: Buffer[] = [];
  private available = 0;
  private waiter: (() => void) | null = null;
  private failure: Error | null = null;

  constructor(socket: Socket, describe: () => string) {
    const fail = (why: string) => {
      this.failure ??= new Error(`${describe()}: ${why}`);
      this.wake();
    };
    socket.on('end', () => fail('the server closed the connection'));
    socket.on('close', () => fail('the connection closed'));
    socket.on('error', (err) => fail(err.message));
  }

  /** Bytes from the socket (the caller passes a copy it will not reuse). */
  push(data: Buffer): void {
    this.chunks.push(data);
    this.available += data.length;
    this.wake();
  }

  /** Whatever arrived but was not read yet (handed to the next parser). */
  drain(): Buffer[] {
    const rest = this.chunks;
    this.chunks = [];
    this.available = 0;
    return rest;
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = null;
    w?.();
  }

  /** Fills `into` completely from the stream. */
  async readInto(into: Uint8Array): Promise<void> {
    let done = 0;
    while (done < into.length) {
      if (this.available === 0) {
        if (this.failure) throw this.failure;
        await new Promise<void>((resolve) => (this.waiter = resolve));
        continue;
      }
      const head = this.chunks[0];
      const n = Math.min(head.length, into.length - done);
      into.set(head.subarray(0, n), done);
      done += n;
      this.available -= n;
      if (n === head.length) this.chunks.shift();
      else this.chunks[0] = head.subarray(n);
    }
  }

  async read(length: number): Promise<Buffer> {
    const out = Buffer.allocUnsafe(length);
    await this.readInto(out);
    return out;
  }
}
