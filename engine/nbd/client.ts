// An NBD client (fixed newstyle negotiation, NBD_OPT_GO, structured replies,
// metadata contexts, block status), with many requests in flight. Errors on
// the connection fail every request in flight with SOURCE_IO.
import { connect, type Socket } from 'node:net';
import { BlockvaultError } from '../core/errors.js';
import {
  cmd, decodeOptReplyHeader, encodeGo, encodeMetaContexts, encodeOption, encodeRequest, flagFixedNewstyle, flagNoZeroes,
  info, nbdMagic, oldstyleMagic, opt, optReplyBytesMax, optsMagic, rep, repErr, repErrNames, type Extent,
} from './protocol.js';
import { ReplyParser, type Pending } from './reply-parser.js';
import { SocketReader } from './socket-reader.js';
import { describeAddress, type NbdAddress } from './uri.js';

/**
 * Largest read we send in one request (qemu-nbd accepts up to 32 MiB). A 4 MiB
 * batch becomes four 1 MiB requests in flight: measured ~1.5x faster than one
 * 4 MiB request over a unix socket.
 */
const readBytesMax = 1024 * 1024;
/** Largest block status range per request. */
const statusBytesMax = 2 ** 31;

/** Socket reads land in this buffer (and are copied out at once): fewer, larger reads. */
const socketReadBytes = 1024 * 1024;

export class NbdClient {
  sizeBytes = 0;
  transmissionFlags = 0;
  blockSizes = { min: 1, preferred: 4096, max: readBytesMax };
  /** Metadata contexts the server agreed to: name -> id. */
  readonly contexts = new Map<string, number>();
  private structured = false;
  private cookie = 0n;
  private readonly pending = new Map<bigint, Pending>();
  private closedError: Error | null = null;
  private parser: ReplyParser | null = null;
  private reader!: SocketReader;
  private socket!: Socket;

  private constructor(readonly address: NbdAddress) {}

  get description(): string {
    return describeAddress(this.address);
  }

  /**
   * Connects and negotiates. `refusedRetryMs`: keep retrying a refused
   * connection this long (a server we just started may not listen yet).
   */
  static async connect(address: NbdAddress, metaContexts: string[] = [], refusedRetryMs = 0): Promise<NbdClient> {
    const deadline = Date.now() + refusedRetryMs;
    for (;;) {
      try {
        return await NbdClient.connectOnce(address, metaContexts);
      } catch (err) {
        const code = ((err as BlockvaultError).cause as NodeJS.ErrnoException | undefined)?.code;
        if (code !== 'ECONNREFUSED' || Date.now() >= deadline) throw err;
        await new Promise((r) => setTimeout(r, 20));
      }
    }
  }

  private static async connectOnce(address: NbdAddress, metaContexts: string[]): Promise<NbdClient> {
    const where = describeAddress(address);
    const client = new NbdClient(address);
    const onread = { buffer: Buffer.allocUnsafe(socketReadBytes), callback: (n: number, buf: Uint8Array) => client.onBytes(buf.subarray(0, n) as Buffer) };
    const socket = await new Promise<Socket>((resolve, reject) => {
      const s = address.transport === 'unix' ? connect({ path: address.socket, onread }) : connect({ port: address.port, host: address.host, onread });
      s.once('connect', () => resolve(s));
      s.once('error', (err: NodeJS.ErrnoException) => {
        const hint = err.code === 'ENOENT' || err.code === 'ECONNREFUSED' ? ' (is the NBD server running?)' : '';
        reject(new BlockvaultError('SOURCE_IO', `cannot connect to ${where}: ${err.message}${hint}`, { cause: err }));
      });
    });
    socket.setNoDelay(true);
    client.socket = socket;
    client.reader = new SocketReader(socket, () => where);
    try {
      await client.handshake(metaContexts);
    } catch (err) {
      socket.destroy();
      if (err instanceof BlockvaultError) throw err;
      throw new BlockvaultError('SOURCE_IO', `${where}: NBD handshake failed: ${(err as Error).message}`, { cause: err });
    }
    client.startTransmission();
    return client;
  }

  /** Bytes from the socket: to the handshake reader, then to the reply parser. */
  private onBytes(chunk: Buffer): boolean {
    if (!this.parser) {
      this.reader?.push(Buffer.from(chunk)); // the read buffer is reused: copy
      return true;
    }
    try {
      this.parser.push(chunk);
    } catch (err) {
      this.failAll(err as Error);
      this.socket.destroy();
    }
    return true;
  }

  private startTransmission(): void {
    this.parser = new ReplyParser(this.pending, () => this.description);
    const fail = (why: string) => this.failAll(new BlockvaultError('SOURCE_IO', `${this.description}: ${why}`));
    this.socket.on('end', () => fail('the server closed the connection'));
    this.socket.on('close', () => fail('the connection closed'));
    this.socket.on('error', (err) => fail(err.message));
    for (const rest of this.reader.drain()) this.onBytes(rest);
  }

  private failAll(err: Error): void {
    const error = err instanceof BlockvaultError ? err : new BlockvaultError('SOURCE_IO', `${this.description}: ${err.message}`);
    this.closedError ??= error;
    for (const p of this.pending.values()) p.reject(error);
    this.pending.clear();
  }

  private fail(message: string): never {
    throw new BlockvaultError('SOURCE_IO', `${this.description}: ${message}`);
  }

  private async handshake(metaContexts: string[]): Promise<void> {
    const hello = await this.reader.read(18).catch(() => this.fail('not an NBD server (no greeting)'));
    if (hello.readBigUInt64BE(0) !== nbdMagic) this.fail('not an NBD server (bad greeting magic)');
    const second = hello.readBigUInt64BE(8);
    if (second === oldstyleMagic) this.fail('server speaks the old-style NBD handshake, which is not supported');
    if (second !== optsMagic) this.fail('not an NBD server (bad option magic)');
    const serverFlags = hello.readUInt16BE(16);
    if (!(serverFlags & flagFixedNewstyle)) this.fail('server does not support fixed newstyle negotiation');
    const clientFlags = Buffer.alloc(4);
    clientFlags.writeUInt32BE(flagFixedNewstyle | (serverFlags & flagNoZeroes));
    this.socket.write(clientFlags);

    // Structured replies: needed for block status and sparse reads.
    const sr = await this.option(opt.structuredReply, Buffer.alloc(0));
    this.structured = sr.every((r) => r.type === rep.ack) && sr.length > 0;
    if (metaContexts.length > 0 && this.structured) {
      const replies = await this.option(opt.setMetaContext, encodeMetaContexts(this.address.exportName, metaContexts));
      for (const r of replies) {
        if (r.type === rep.metaContext && r.data.length >= 4) this.contexts.set(r.data.toString('utf8', 4), r.data.readUInt32BE(0));
      }
    }
    const go = await this.option(opt.go, encodeGo(this.address.exportName, [info.export, info.blockSize]));
    const failed = go.find((r) => r.type >= repErr);
    if (failed) {
      const code = failed.type - repErr;
      const why = repErrNames[code] ?? `error ${code}`;
      const detail = failed.data.length ? `: ${failed.data.toString('utf8')}` : '';
      throw new BlockvaultError(code === 6 ? 'BAD_INPUT' : 'SOURCE_IO', `${this.description}: server refused export "${this.address.exportName}" (${why}${detail})`);
    }
    for (const r of go) {
      if (r.type !== rep.info || r.data.length < 2) continue;
      const kind = r.data.readUInt16BE(0);
      if (kind === info.export && r.data.length >= 12) {
        this.sizeBytes = Number(r.data.readBigUInt64BE(2));
        this.transmissionFlags = r.data.readUInt16BE(10);
      } else if (kind === info.blockSize && r.data.length >= 14) {
        this.blockSizes = { min: r.data.readUInt32BE(2), preferred: r.data.readUInt32BE(6), max: Math.min(readBytesMax, r.data.readUInt32BE(10)) };
      }
    }
  }

  /** Sends an option and collects its replies up to the final one. */
  private async option(option: number, data: Buffer): Promise<Array<{ type: number; data: Buffer }>> {
    this.socket.write(encodeOption(option, data));
    const replies: Array<{ type: number; data: Buffer }> = [];
    for (;;) {
      const header = decodeOptReplyHeader(await this.reader.read(20));
      if (header.length > optReplyBytesMax) this.fail(`option reply of ${header.length} bytes is too large`);
      const payload = await this.reader.read(header.length);
      replies.push({ type: header.type, data: payload });
      if (header.type === rep.ack || header.type >= repErr) return replies; // final reply
    }
  }

  private send(pending: Pending, flags: number, type: number, offset: number, length: number): Promise<void> {
    if (this.closedError) return Promise.reject(this.closedError);
    const cookie = ++this.cookie;
    const done = new Promise<void>((resolve, reject) => {
      pending.resolve = resolve;
      pending.reject = reject;
    });
    this.pending.set(cookie, pending);
    this.socket.write(encodeRequest(flags, type, cookie, offset, length));
    return done;
  }

  /** Reads `into.length` bytes at `offset`, in pieces of at most the server's maximum, all in flight. */
  async read(offset: number, into: Uint8Array): Promise<void> {
    if (offset < 0 || offset + into.length > this.sizeBytes) this.fail(`read ${offset}+${into.length} is outside the export (${this.sizeBytes} bytes)`);
    const pieces: Promise<void>[] = [];
    for (let at = 0; at < into.length; at += this.blockSizes.max) {
      const piece = into.subarray(at, Math.min(into.length, at + this.blockSizes.max));
      pieces.push(this.send({ kind: 'read', offset: offset + at, into: piece, errors: [], resolve: () => undefined, reject: () => undefined }, 0, cmd.read, offset + at, piece.length));
    }
    await Promise.all(pieces);
  }

  /** Extents of one metadata context covering [offset, offset+length), in order. */
  async blockStatus(context: string, offset: number, length: number): Promise<Extent[]> {
    const id = this.contexts.get(context);
    if (id === undefined) this.fail(`metadata context ${context} was not negotiated`);
    const extents: Extent[] = [];
    let at = offset;
    const end = offset + length;
    while (at < end) {
      const want = Math.min(end - at, statusBytesMax);
      const pending: Pending = { kind: 'status', offset: at, extents: new Map(), errors: [], resolve: () => undefined, reject: () => undefined };
      await this.send(pending, 0, cmd.blockStatus, at, want);
      const got = pending.extents!.get(id) ?? [];
      if (got.length === 0) this.fail(`no block status for ${context} at offset ${at}`);
      for (const e of got) {
        const len = Math.min(e.length, end - at);
        if (len <= 0) break;
        extents.push({ length: len, flags: e.flags });
        at += len;
      }
    }
    return extents;
  }

  async close(): Promise<void> {
    if (!this.socket.destroyed) {
      if (!this.closedError) this.socket.write(encodeRequest(0, cmd.disc, 0n, 0, 0));
      this.socket.end();
      this.socket.destroy();
    }
  }
}
