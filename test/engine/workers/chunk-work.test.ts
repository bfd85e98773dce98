import fc from 'fast-check';
import { randomBytes } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { initDigests, sha256 } from '../../../engine/core/digest.js';
import { codecRaw, codecZstd } from '../../../engine/format/pack-format.js';
import { compressChunks, decodeChunks, hashChunks } from '../../../engine/workers/chunk-work.js';

beforeAll(initDigests);

function arrayBuffer(parts: Buffer[]): ArrayBuffer {
  const all = Buffer.concat(parts);
  return all.buffer.slice(all.byteOffset, all.byteOffset + all.length) as ArrayBuffer;
}

describe('chunk work', () => {
  it('hashes chunks with SHA-256 and gives zero chunks the zero id', () => {
    const a = randomBytes(1000);
    const z = Buffer.alloc(500);
    const reply = hashChunks({ op: 'hash', data: arrayBuffer([a, z]), chunkLengths: [1000, 500] });
    const ids = Buffer.from(reply.ids);
    expect(ids.subarray(0, 32)).toEqual(sha256(a));
    expect(ids.subarray(32, 64)).toEqual(Buffer.alloc(32));
  });

  it('compress then decode gives back the chunks, raw when zstd does not help', () => {
    fc.assert(fc.property(fc.array(fc.tuple(fc.integer({ min: 1, max: 70000 }), fc.boolean()), { minLength: 1, maxLength: 6 }), (specs) => {
      const chunks = specs.map(([n, random]) => (random ? randomBytes(n) : Buffer.alloc(n, n & 255)));
      const ranges: number[] = [];
      let at = 0;
      for (const c of chunks) { ranges.push(at, c.length); at += c.length; }
      const packed = compressChunks({ op: 'compress', data: arrayBuffer(chunks), out: new ArrayBuffer(at), ranges, level: 1 });
      specs.forEach(([n, random], i) => {
        expect(packed.codecs[i]).toBe(random && n > 64 ? codecRaw : packed.codecs[i]);
        if (!random && n > 1000) expect(packed.codecs[i]).toBe(codecZstd);
      });
      const offsets: number[] = [];
      let p = 0;
      for (const s of packed.storedBytes) { offsets.push(p); p += s; }
      const decoded = decodeChunks({
        op: 'decode', input: packed.payloads.slice(0, p), offsets, storedBytes: packed.storedBytes, rawBytes: chunks.map((c) => c.length),
        codecs: packed.codecs, storedXxh64: packed.storedXxh64, ids: arrayBuffer(chunks.map((c) => sha256(c))), checkContent: true,
      });
      expect(decoded.failures).toEqual([]);
      expect(Buffer.from(decoded.output).equals(Buffer.concat(chunks))).toBe(true);
    }), { numRuns: 40 });
  });

  const damaged = (checkContent: boolean) => {
    const chunk = Buffer.alloc(4096, 3);
    const packed = compressChunks({ op: 'compress', data: arrayBuffer([chunk, chunk]), out: new ArrayBuffer(8192), ranges: [0, 4096, 4096, 4096], level: 1 });
    const payloads = Buffer.from(packed.payloads, 0, packed.storedBytes[0] + packed.storedBytes[1]);
    payloads[1] ^= 0x10;
    return decodeChunks({
      op: 'decode', input: arrayBuffer([payloads]), offsets: [0, packed.storedBytes[0]], storedBytes: packed.storedBytes,
      rawBytes: [4096, 4096], codecs: packed.codecs, storedXxh64: packed.storedXxh64, ids: arrayBuffer([sha256(chunk), sha256(Buffer.from('other'))]), checkContent,
    });
  };

  it('reports a flipped stored bit and a wrong id, per chunk', () => {
    expect(damaged(true).failures).toEqual([{ chunk: 0, reason: 'stored-checksum' }, { chunk: 1, reason: 'content-hash' }]);
  });

  it('without the content check, still reports a flipped stored bit but not a wrong id', () => {
    const decoded = damaged(false);
    expect(decoded.failures).toEqual([{ chunk: 0, reason: 'stored-checksum' }]);
    expect(Buffer.from(decoded.output!, 4096, 4096).equals(Buffer.alloc(4096, 3))).toBe(true);
  });
});
