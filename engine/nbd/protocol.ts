// NBD wire format (the NBD project's doc/proto.md): constants, encoders and
// decoders. Pure: bytes in, bytes out. All integers are big-endian.
import { BlockvaultError } from '../core/errors.js';

export const nbdMagic = 0x4e42444d41474943n; // "NBDMAGIC"
export const optsMagic = 0x49484156454f5054n; // "IHAVEOPT"
export const oldstyleMagic = 0x00420281861253n;
export const optReplyMagic = 0x3e889045565a9n;
export const requestMagic = 0x25609513;
export const simpleReplyMagic = 0x67446698;
export const structuredReplyMagic = 0x668e33ef;

export const flagFixedNewstyle = 1 << 0;
export const flagNoZeroes = 1 << 1;

export const opt = { exportName: 1, abort: 2, list: 3, info: 6, go: 7, structuredReply: 8, listMetaContext: 9, setMetaContext: 10 } as const;
export const rep = { ack: 1, server: 2, info: 3, metaContext: 4 } as const;
export const repErr = 2 ** 31;
export const repErrNames: Record<number, string> = {
  1: 'unsupported option', 2: 'refused by server policy', 3: 'invalid request', 4: 'not supported on the server platform',
  5: 'TLS required', 6: 'unknown export', 7: 'server shutting down', 8: 'block size negotiation required', 9: 'request too big',
};
export const info = { export: 0, name: 1, description: 2, blockSize: 3 } as const;

export const cmd = { read: 0, write: 1, disc: 2, flush: 3, trim: 4, cache: 5, writeZeroes: 6, blockStatus: 7 } as const;
export const cmdFlagDf = 1 << 2;
export const cmdFlagReqOne = 1 << 3;
export const transmissionFlagReadOnly = 1 << 1;
export const transmissionFlagSendDf = 1 << 7;

export const reply = { none: 0, offsetData: 1, offsetHole: 2, blockStatus: 5, error: 2 ** 15 + 1, errorOffset: 2 ** 15 + 2 } as const;
export const replyFlagDone = 1;

/** base:allocation flags. */
export const stateHole = 1;
export const stateZero = 2;
/** qemu:dirty-bitmap:<name> flag. */
export const stateDirty = 1;

export const errnoNames: Record<number, string> = {
  1: 'EPERM', 5: 'EIO', 12: 'ENOMEM', 22: 'EINVAL', 28: 'ENOSPC', 75: 'EOVERFLOW', 95: 'ENOTSUP', 108: 'ESHUTDOWN',
};

/** Strings in option data: at most 4096 bytes (proto.md). */
export const nbdStringBytesMax = 4096;
/** Option reply payloads we accept before hanging up on a server. */
export const optReplyBytesMax = 64 * 1024;
/** Structured reply payloads other than read data. */
export const replyPayloadBytesMax = 16 * 1024 * 1024;

export function encodeOption(option: number, data: Buffer = Buffer.alloc(0)): Buffer {
  const out = Buffer.alloc(16 + data.length);
  out.writeBigUInt64BE(optsMagic, 0);
  out.writeUInt32BE(option, 8);
  out.writeUInt32BE(data.length, 12);
  data.copy(out, 16);
  return out;
}

function nbdString(s: string): Buffer {
  const bytes = Buffer.from(s, 'utf8');
  if (bytes.length > nbdStringBytesMax) throw new BlockvaultError('BAD_INPUT', `NBD string too long (${bytes.length} bytes): ${s.slice(0, 40)}...`);
  const out = Buffer.alloc(4 + bytes.length);
  out.writeUInt32BE(bytes.length, 0);
  bytes.copy(out, 4);
  return out;
}

/** NBD_OPT_GO / NBD_OPT_INFO data: export name and the info items wanted. */
export function encodeGo(exportName: string, infos: number[]): Buffer {
  const list = Buffer.alloc(2 + 2 * infos.length);
  list.writeUInt16BE(infos.length, 0);
  infos.forEach((v, i) => list.writeUInt16BE(v, 2 + 2 * i));
  return Buffer.concat([nbdString(exportName), list]);
}

/** NBD_OPT_SET_META_CONTEXT data: export name and the context queries. */
export function encodeMetaContexts(exportName: string, queries: string[]): Buffer {
  const count = Buffer.alloc(4);
  count.writeUInt32BE(queries.length, 0);
  return Buffer.concat([nbdString(exportName), count, ...queries.map(nbdString)]);
}

export interface OptReplyHeader { option: number; type: number; length: number }

export function decodeOptReplyHeader(b: Buffer): OptReplyHeader {
  if (b.readBigUInt64BE(0) !== optReplyMagic) throw new BlockvaultError('SOURCE_IO', 'NBD server sent a bad option reply magic');
  return { option: b.readUInt32BE(8), type: b.readUInt32BE(12), length: b.readUInt32BE(16) };
}

export function encodeRequest(flags: number, type: number, cookie: bigint, offset: number, length: number): Buffer {
  const out = Buffer.alloc(28);
  out.writeUInt32BE(requestMagic, 0);
  out.writeUInt16BE(flags, 4);
  out.writeUInt16BE(type, 6);
  out.writeBigUInt64BE(cookie, 8);
  out.writeBigUInt64BE(BigInt(offset), 16);
  out.writeUInt32BE(length, 24);
  return out;
}

export interface Extent { length: number; flags: number }

/** NBD_REPLY_TYPE_BLOCK_STATUS payload: context id, then (length, flags) pairs. */
export function decodeBlockStatus(payload: Buffer): { contextId: number; extents: Extent[] } {
  if (payload.length < 12 || (payload.length - 4) % 8 !== 0) throw new BlockvaultError('SOURCE_IO', `NBD server sent a malformed block status (${payload.length} bytes)`);
  const extents: Extent[] = [];
  for (let at = 4; at < payload.length; at += 8) {
    const length = payload.readUInt32BE(at);
    if (length === 0) throw new BlockvaultError('SOURCE_IO', 'NBD server sent a zero-length extent');
    extents.push({ length, flags: payload.readUInt32BE(at + 4) });
  }
  return { contextId: payload.readUInt32BE(0), extents };
}

/** Error chunk payload: errno, message. */
export function decodeErrorChunk(payload: Buffer): { errno: number; message: string } {
  if (payload.length < 6) return { errno: 5, message: 'malformed error chunk' };
  const errno = payload.readUInt32BE(0);
  const messageBytes = Math.min(payload.readUInt16BE(4), payload.length - 6);
  return { errno, message: payload.toString('utf8', 6, 6 + messageBytes) };
}
