import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { initDigests } from '../../../engine/core/digest.js';
import { decodeGroup, encodeGroup } from '../../../engine/format/group-format.js';

beforeAll(async () => { await initDigests(); });

const hex32 = fc.uint8Array({ minLength: 16, maxLength: 16 }).map((b) => Buffer.from(b).toString('hex'));
const groupArb = fc.record({
  id: hex32, vm: fc.constantFrom('web01', 'db', 'a.b+c'), time: fc.date({ min: new Date(0), max: new Date(4e12), noInvalidDate: true }).map((d) => d.toISOString()),
  disks: fc.uniqueArray(fc.record({ disk: fc.stringMatching(/^[a-z][a-z0-9]{0,7}$/), point: hex32 }), { minLength: 1, maxLength: 64, selector: (d) => d.disk }),
});

describe('group object format', () => {
  it('round-trips', () => {
    fc.assert(fc.property(groupArb, (g) => { expect(decodeGroup(encodeGroup(g), 'g')).toEqual(g); }));
  });
  it('refuses damage and nonsense by name', () => {
    const bytes = encodeGroup({ id: 'ab'.repeat(16), vm: 'web01', time: '2026-12-01T00:00:00.000Z', disks: [{ disk: 'sda', point: 'cd'.repeat(16) }] });
    fc.assert(fc.property(fc.integer({ min: 0, max: bytes.length * 8 - 1 }), (bit) => {
      const flipped = Buffer.from(bytes);
      flipped[bit >> 3] ^= 1 << (bit & 7);
      expect(() => decodeGroup(flipped, 'groups/web01/x.group')).toThrow(/groups\/web01\/x\.group/);
    }));
    expect(() => encodeGroup({ id: 'ab'.repeat(16), vm: 'v', time: 't', disks: [{ disk: 'sda', point: 'cd'.repeat(16) }, { disk: 'sda', point: 'ef'.repeat(16) }] })).toThrow(/group fields/);
    expect(() => encodeGroup({ id: 'ab'.repeat(16), vm: 'v', time: 't', disks: [] })).toThrow(/group fields/);
  });
});
