import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { initDigests, xxh64 } from '../../../engine/core/digest.js';
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

  it('version 2 round-trips the machine description and consistency, and refuses mixed versions by name', () => {
    const machineArb = fc.record({ kind: fc.constantFrom('qemu' as const, 'libvirt' as const), cpus: fc.integer({ min: 1, max: 256 }), memoryBytes: fc.integer({ min: 1, max: 2 ** 40 }), domainXml: fc.string({ maxLength: 2000 }) });
    fc.assert(fc.property(groupArb, machineArb, fc.constantFrom('application' as const, 'crash' as const), (g, machine, consistency) => {
      const bytes = encodeGroup({ ...g, machine, consistency });
      expect(bytes.subarray(0, 8).toString('latin1')).toBe('BVGROUP\x02');
      expect(decodeGroup(bytes, 'g')).toEqual({ ...g, machine, consistency });
    }));
    const base = { id: 'ab'.repeat(16), vm: 'web01', time: '2026-12-01T00:00:00.000Z', disks: [{ disk: 'vda', point: 'cd'.repeat(16) }] };
    expect(encodeGroup(base).subarray(0, 8).toString('latin1')).toBe('BVGROUP\x01'); // no machine: still version 1, readable by format 5
    expect(() => encodeGroup({ ...base, machine: { kind: 'qemu' } })).toThrow(/machine or consistency out of range/);
    expect(() => encodeGroup({ ...base, machine: { kind: 'vmware' as 'qemu' }, consistency: 'crash' })).toThrow(/machine or consistency out of range/);
    // Hand-made envelopes with valid checksums: the version byte and the fields must agree.
    const v1WithMachine = Buffer.from(encodeGroup({ ...base, machine: { kind: 'qemu' }, consistency: 'crash' }));
    v1WithMachine[7] = 1;
    expect(() => decodeGroup(resum(v1WithMachine), 'groups/web01/y.group')).toThrow(/groups\/web01\/y\.group: a version-1 group with version-2 fields/);
    const v2Bare = Buffer.from(encodeGroup(base));
    v2Bare[7] = 2;
    expect(() => decodeGroup(resum(v2Bare), 'groups/web01/z.group')).toThrow(/groups\/web01\/z\.group: a version-2 group without its machine description/);
  });
});

/** The envelope's checksum recomputed after an edit (a forgery a decoder must catch by its fields). */
function resum(b: Buffer): Buffer {
  b.writeBigUInt64LE(xxh64(b.subarray(0, b.length - 8)), b.length - 8);
  return b;
}
