// docs/FORMAT.md quotes hex dumps of encoder output; this keeps them honest.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { decodePoint } from '../../../engine/format/point-format.js';
import { decodeConfig } from '../../../engine/format/config-format.js';
import { decodeRecordHeader } from '../../../engine/format/pack-format.js';
import { decodeIndexObject } from '../../../engine/format/index-object-format.js';
import { decodeGroup } from '../../../engine/format/group-format.js';
import { cdcLeafBytes, decodeCdcLeaf, decodeMapPage } from '../../../engine/format/map-format.js';
import { goldenVectors, hexDump } from '../../../scripts/golden-vectors.js';

const doc = readFileSync(new URL('../../../docs/FORMAT.md', import.meta.url), 'utf8');
const quoted = new Map([...doc.matchAll(/```golden (\S+)\n([\s\S]*?)\n```/g)].map((m) => [m[1], m[2]]));

describe('docs/FORMAT.md golden vectors', () => {
  it('match the encoders byte for byte', async () => {
    const vectors = await goldenVectors();
    expect([...quoted.keys()].sort()).toEqual(Object.keys(vectors).sort());
    for (const [name, bytes] of Object.entries(vectors)) expect(quoted.get(name), name).toBe(hexDump(bytes));
  });

  it('decode with the decoders', async () => {
    const v = await goldenVectors();
    expect(decodeRecordHeader(v['record-header'], 32, 'golden').rawBytes).toBe(65536);
    expect(decodePoint(v['point-full'], 'golden').header.vm).toBe('web01');
    expect(decodePoint(v['point-delta'], 'golden').body.kind).toBe('delta');
    const paged = decodePoint(v['point-paged'], 'golden').body;
    expect(paged.kind === 'paged' && [paged.height, paged.root.length]).toEqual([1, 64]);
    expect(decodeMapPage(v['map-page'], { level: 0, count: 1 }, 'golden')).toMatchObject({ kind: 'entries' });
    expect(decodeMapPage(v['leaf-patch'], { level: 0, count: 1024 }, 'golden')).toMatchObject({ kind: 'patch', count: 1024 });
    expect(decodeConfig(v.config, 'golden').chunkBytes).toBe(65536);
    expect(decodeConfig(v['config-cdc'], 'golden').chunker).toEqual({ kind: 'aligned-cdc', minBytes: 16384, avgBytes: 65536, maxBytes: 262144 });
    const cdc = decodePoint(v['point-cdc'], 'golden');
    expect(cdc.body.kind === 'cdc' && [cdc.body.height, cdc.body.root.length, cdc.header.leafBytes]).toEqual([1, 32, cdcLeafBytes]);
    expect([...decodeCdcLeaf(v['cdc-leaf'], { index: 0, firstByte: 0, sizeBytes: 100000, chunkBytesMax: 262144 }, 'golden').lengths]).toEqual([32768, 45056, 22176]);
    expect(decodeIndexObject(v['index-object'], 'golden')[0].records[0].rawBytes).toBe(65536);
    expect(decodeGroup(v.group, 'golden').disks.map((d) => d.disk)).toEqual(['sda', 'sdb']);
    expect(decodeGroup(v['group-vm'], 'golden')).toMatchObject({ consistency: 'crash', machine: { kind: 'qemu', cpus: 2, memoryBytes: 1073741824 } });
  });
});
