// The transmission-phase receive side as a push parser: socket bytes go in,
// read data is copied straight into each request's buffer, and requests are
// settled as their final reply arrives. No promise per socket chunk: this is
// what lets the client keep up with qemu-nbd.
import { BlockvaultError } from '../core/errors.js';
import { decodeBlockStatus, decodeErrorChunk, errnoNames, reply, replyFlagDone, replyPayloadBytesMax, simpleReplyMagic, structuredReplyMagic, type Extent } from './protocol.js';

export interface Pending {
  kind: 'read' | 'status';
  offset: number;
  into?: Uint8Array;
  extents?: Map<number, Extent[]>;
  errors: string[];
  resolve: () => void;
  reject: (err: Error) => void;
}

type Step =
  | { state: 'bytes'; need: number; got: number; buffer: Buffer; then: (b: Buffer) => void }
  | { state: 'sink'; target: Uint8Array; got: number; then: () => void };

export class ReplyParser {
  private step: Step;

  constructor(private readonly pending: Map<bigint, Pending>, private readonly describe: () => string) {
    this.step = this.expectMagic();
  }

  private fail(message: string): never {
    throw new BlockvaultError('SOURCE_IO', `${this.describe()}: ${message}`);
  }

  private bytes(need: number, then: (b: Buffer) => void): Step {
    return { state: 'bytes', need, got: 0, buffer: Buffer.allocUnsafe(need), then };
  }

  private expectMagic(): Step {
    return this.bytes(4, (b) => {
      const magic = b.readUInt32BE(0);
      if (magic === simpleReplyMagic) this.step = this.bytes(12, (h) => this.simple(h));
      else if (magic === structuredReplyMagic) this.step = this.bytes(16, (h) => this.structured(h));
      else this.fail(`bad reply magic 0x${magic.toString(16)}`);
    });
  }

  /** Feeds socket bytes; throws (and the caller hangs up) on a protocol violation. */
  push(chunk: Buffer): void {
    let at = 0;
    while (at < chunk.length) {
      const step = this.step;
      if (step.state === 'sink') {
        const n = Math.min(step.target.length - step.got, chunk.length - at);
        step.target.set(chunk.subarray(at, at + n), step.got);
        step.got += n;
        at += n;
        if (step.got === step.target.length) step.then();
      } else {
        const n = Math.min(step.need - step.got, chunk.length - at);
        chunk.copy(step.buffer, step.got, at, at + n);
        step.got += n;
        at += n;
        if (step.got === step.need) step.then(step.buffer);
      }
      if (this.step === step && ((step.state === 'sink' && step.got === step.target.length) || (step.state === 'bytes' && step.got === step.need))) {
        this.step = this.expectMagic(); // a handler that sets no next step ends the message
      }
    }
  }

  private take(cookie: bigint): Pending {
    const p = this.pending.get(cookie);
    if (!p) this.fail(`reply for unknown request ${cookie}`);
    return p;
  }

  private simple(h: Buffer): void {
    const errno = h.readUInt32BE(0);
    const cookie = h.readBigUInt64BE(4);
    const p = this.take(cookie);
    if (errno !== 0) {
      this.pending.delete(cookie);
      p.reject(this.requestError(p, errno, ''));
      return;
    }
    if (p.kind === 'read' && p.into && p.into.length > 0) {
      this.step = { state: 'sink', target: p.into, got: 0, then: () => this.settle(cookie, p) };
    } else {
      this.settle(cookie, p);
    }
  }

  private structured(h: Buffer): void {
    const flags = h.readUInt16BE(0);
    const type = h.readUInt16BE(2);
    const cookie = h.readBigUInt64BE(4);
    const length = h.readUInt32BE(12);
    const p = this.take(cookie);
    const done = () => {
      if (flags & replyFlagDone) this.settle(cookie, p);
    };
    if (type === reply.offsetData && p.kind === 'read' && p.into) {
      if (length < 9) this.fail('short read data chunk');
      this.step = this.bytes(8, (o) => {
        const at = Number(o.readBigUInt64BE(0)) - p.offset;
        if (at < 0 || at + length - 8 > p.into!.length) this.fail('server sent read data outside the request');
        this.step = { state: 'sink', target: p.into!.subarray(at, at + length - 8), got: 0, then: done };
      });
      return;
    }
    if (length > replyPayloadBytesMax) this.fail(`reply chunk of ${length} bytes is too large`);
    if (length === 0) {
      if (type & 0x8000) p.errors.push('error with no details');
      else if (type !== reply.none) this.fail(`unexpected empty reply chunk type ${type}`);
      done();
      return;
    }
    this.step = this.bytes(length, (payload) => {
      if (type === reply.offsetHole && p.kind === 'read' && p.into) {
        const at = Number(payload.readBigUInt64BE(0)) - p.offset;
        const size = payload.readUInt32BE(8);
        if (at < 0 || at + size > p.into.length) this.fail('server sent a hole outside the request');
        p.into.fill(0, at, at + size);
      } else if (type === reply.blockStatus && p.kind === 'status') {
        const status = decodeBlockStatus(payload);
        p.extents!.set(status.contextId, status.extents);
      } else if (type & 0x8000) {
        const e = decodeErrorChunk(payload);
        p.errors.push(`${errnoNames[e.errno] ?? `errno ${e.errno}`}${e.message ? `: ${e.message}` : ''}`);
      } else if (type !== reply.none) {
        this.fail(`unexpected reply chunk type ${type}`);
      }
      done();
    });
  }

  private settle(cookie: bigint, p: Pending): void {
    this.pending.delete(cookie);
    if (p.errors.length > 0) p.reject(this.requestError(p, 5, p.errors.join('; ')));
    else p.resolve();
  }

  private requestError(p: Pending, errno: number, message: string): BlockvaultError {
    const what = p.kind === 'read' ? `read at offset ${p.offset}` : `block status at offset ${p.offset}`;
    return new BlockvaultError('SOURCE_IO', `${this.describe()}: ${what} failed (${message || errnoNames[errno] || `errno ${errno}`})`);
  }
}
