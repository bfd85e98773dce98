// The golden vectors quoted in docs/FORMAT.md, produced by the real encoders.
// test/engine/format/golden.test.ts checks the doc against this output;
// `node dist/scripts/golden-vectors.js` prints them for pasting into the doc.
import { initDigests, sha256 } from '../engine/core/digest.js';
import { encodeConfig } from '../engine/format/config-format.js';
import { codecZstd, encodePackHeader, encodeRecordHeader, encodeTrailer } from '../engine/format/pack-format.js';
import { encodePoint, diffMaps } from '../engine/format/point-format.js';
import { cdcLeafBytes, encodeCdcLeaf, encodeLeafPatch, encodeMapPage } from '../engine/format/map-format.js';
import { encodeIndexObject } from '../engine/format/index-object-format.js';
import { encodePendingGc } from '../engine/format/gc-format.js';
import { encodeGroup } from '../engine/format/group-format.js';

export async function goldenVectors(): Promise<Record<string, Buffer>> {
  await initDigests();
  const chunkId = sha256(Buffer.from('blockvault'));
  const record = { id: chunkId, rawBytes: 65536, storedBytes: 1234, codec: codecZstd, storedXxh64: 0x0123456789abcdefn } as const;
  const map = Buffer.concat([sha256(Buffer.from('a')), Buffer.alloc(32)]);
  const header = {
    id: '00112233445566778899aabbccddeeff', vm: 'web01', disk: 'sda', time: '2026-11-22T01:00:00.000Z',
    sizeBytes: 100000, chunkBytes: 65536, chunksTotal: 2, parent: null, base: null, chainDepth: 0,
    mapSha256: sha256(map).toString('hex'), source: {}, stats: {},
  };
  const newMap = Buffer.concat([sha256(Buffer.from('a')), sha256(Buffer.from('b'))]);
  const delta = encodePoint(
    { ...header, id: 'ffeeddccbbaa99887766554433221100', parent: header.id, base: header.id, chainDepth: 1, mapSha256: sha256(newMap).toString('hex') },
    { kind: 'delta', ...diffMaps(map, newMap) },
  );
  // A paged map of 1025 chunks (height 1): leaf 0 all zero (not stored), leaf 1 one chunk.
  const leaf = encodeMapPage(0, sha256(Buffer.from('a')));
  const root = Buffer.concat([Buffer.alloc(32), sha256(leaf)]);
  const paged = encodePoint(
    { ...header, id: '0123456789abcdef0123456789abcdef', sizeBytes: 1025 * 65536, chunksTotal: 1025, mapSha256: sha256(root).toString('hex') },
    { kind: 'paged', height: 1, root },
  );
  // A variable-length map of a 100000-byte disk (one leaf, height 1): chunks of 32768, 45056 and 22176 bytes, the middle one zero.
  const cdcLeaf = encodeCdcLeaf({ firstOffset: 0, lengths: Uint32Array.from([32768, 45056, 22176]), ids: Buffer.concat([sha256(Buffer.from('a')), Buffer.alloc(32), sha256(Buffer.from('b'))]) });
  const cdcRoot = sha256(cdcLeaf);
  const chunker = { kind: 'aligned-cdc', minBytes: 16384, avgBytes: 65536, maxBytes: 262144 } as const;
  const cdcPoint = encodePoint(
    { ...header, id: '0123456789abcdef0123456789abcdef', chunkBytes: 262144, chunksTotal: 3, mapSha256: sha256(cdcRoot).toString('hex'), stats: { chunksZero: 1, bytesNonZero: 54944 }, chunker, leafBytes: cdcLeafBytes },
    { kind: 'cdc', height: 1, root: cdcRoot },
  );
  return {
    'cdc-leaf': cdcLeaf,
    'point-cdc': cdcPoint,
    'config-cdc': encodeConfig({ repoId: '0'.repeat(32), formatVersion: 5, chunkBytes: 262144, zstdLevel: 1, packBytesTarget: 134217728, createdAt: '2026-12-01T00:00:00.000Z', chunker }),
    'point-paged': paged,
    'map-page': leaf,
    // Leaf 0 of a 1024-chunk leaf's worth, patched: entry 3 becomes SHA-256("b"), over a base leaf of id SHA-256("base").
    'leaf-patch': encodeLeafPatch(1024, sha256(Buffer.from('base')), [3], sha256(Buffer.from('b'))),
    'pack-header': encodePackHeader(Buffer.from('000102030405060708090a0b0c0d0e0f', 'hex'), 1700000000000),
    'record-header': encodeRecordHeader(record),
    'pack-trailer': encodeTrailer([{ ...record, offset: 32 }]),
    'point-full': encodePoint(header, { kind: 'full', map }),
    'point-delta': delta,
    'group-vm': encodeGroup({
      id: '00112233445566778899aabbccddeeff', vm: 'web01', time: '2026-12-01T02:00:00.000Z', disks: [{ disk: 'vda', point: 'ffeeddccbbaa99887766554433221100' }],
      machine: { kind: 'qemu', qemuVersion: '7.2.0', machineType: 'pc-i440fx-7.2', accel: 'kvm', cpus: 2, memoryBytes: 1073741824, name: 'web01', disks: [{ name: 'vda', driver: 'virtio-blk-pci', sizeBytes: 10737418240, format: 'qcow2', file: '/var/lib/images/web01.qcow2' }] },
      consistency: 'crash',
    }),
    group: encodeGroup({ id: '00112233445566778899aabbccddeeff', vm: 'web01', time: '2026-12-01T01:00:00.000Z', disks: [{ disk: 'sda', point: 'ffeeddccbbaa99887766554433221100' }, { disk: 'sdb', point: '0123456789abcdef0123456789abcdef' }] }),
    'index-object': encodeIndexObject([{ packId: '000102030405060708090a0b0c0d0e0f', packBytes: 32 + 64 + 1234 + 64 + 32, records: [{ ...record, offset: 32 }] }]),
    'pending-gc': encodePendingGc({ id: 'mx4w5w5l-b336b277fe9d', started: '2026-12-01T02:00:00.000Z', marked: ['0123456789abcdef0123456789abcdef'], condemned: ['000102030405060708090a0b0c0d0e0f'] }),
    config: encodeConfig({ repoId: '0'.repeat(32), formatVersion: 4, chunkBytes: 65536, zstdLevel: 1, packBytesTarget: 134217728, createdAt: '2026-11-22T00:00:00.000Z' }),
  };
}

export function hexDump(bytes: Buffer): string {
  const lines: string[] = [];
  for (let at = 0; at < bytes.length; at += 16) {
    lines.push(`${at.toString(16).padStart(4, '0')}: ${bytes.subarray(at, at + 16).toString('hex').replace(/(..)(?!$)/g, '$1 ')}`);
  }
  return lines.join('\n');
}

if (process.argv[1]?.endsWith('golden-vectors.js')) {
  for (const [name, bytes] of Object.entries(await goldenVectors())) {
    process.stdout.write(`\`\`\`golden ${name}\n${hexDump(bytes)}\n\`\`\`\n\n`);
  }
}
