// gc's table of every record the index knows: the first 16 bytes of its chunk
// id -> (pack number, record ordinal, stored bytes, offset), in flat typed
// arrays (32 bytes a slot, about 38 a record), so the mark needs no B-tree lookup
// per chunk: a million random LMDB lookups touch every page of the index,
// and those mapped pages count in the process's memory. Pure. Open
// addressing with linear probing; chunk ids are SHA-256, so their first
// word is already a uniform hash.
import { assert } from '../core/errors.js';

const keyWords = 4;
/** Slots per record: a load of at most 0.85 keeps linear probes short. */
const slack = 1 / 0.85;

export class RecordTable {
  private readonly capacity: number;
  private readonly keys: Uint32Array;
  /** Per slot: pack number + 1 (0: empty), record ordinal, stored bytes, record offset (packs are at most 1 GiB). */
  private readonly values: Uint32Array;
  size = 0;

  constructor(recordsMax: number) {
    this.capacity = Math.max(16, Math.ceil(recordsMax * slack) + 1);
    this.keys = new Uint32Array(this.capacity * keyWords);
    this.values = new Uint32Array(this.capacity * 4);
  }

  /** The slot holding `id`, or -(the empty slot where it would go) - 1. No allocation: the mark calls this per chunk. */
  private slotOf(id: Buffer): number {
    const k0 = id.readUInt32LE(0);
    const k1 = id.readUInt32LE(4);
    const k2 = id.readUInt32LE(8);
    const k3 = id.readUInt32LE(12);
    for (let slot = k0 % this.capacity, probes = 0; probes < this.capacity; slot = slot + 1 === this.capacity ? 0 : slot + 1, probes++) {
      if (this.values[slot * 4] === 0) return -slot - 1;
      const at = slot * keyWords;
      if (this.keys[at] === k0 && this.keys[at + 1] === k1 && this.keys[at + 2] === k2 && this.keys[at + 3] === k3) return slot;
    }
    assert(false, 'record table is full');
  }

  /**
   * Adds a record; when the id is there already (another copy of the chunk),
   * keep(existingPack, existingOrdinal) says whether the existing one stays.
   */
  put(id: Buffer, pack: number, ordinal: number, storedBytes: number, offset: number, keep: (pack: number, ordinal: number) => boolean): void {
    let slot = this.slotOf(id);
    if (slot >= 0 && keep(this.values[slot * 4] - 1, this.values[slot * 4 + 1])) return;
    if (slot < 0) {
      slot = -slot - 1;
      assert(this.size < this.capacity - 1, 'record table sized for its records');
      for (let w = 0; w < keyWords; w++) this.keys[slot * keyWords + w] = id.readUInt32LE(w * 4);
      this.size += 1;
    }
    this.values[slot * 4] = pack + 1;
    this.values[slot * 4 + 1] = ordinal;
    this.values[slot * 4 + 2] = storedBytes;
    this.values[slot * 4 + 3] = offset;
  }

  /** The slot of the record holding `id`, or -1; then packOf/ordinalOf/storedBytesOf read it. */
  find(id: Buffer): number {
    const slot = this.slotOf(id);
    return slot >= 0 ? slot : -1;
  }
  packOf(slot: number): number {
    return this.values[slot * 4] - 1;
  }
  ordinalOf(slot: number): number {
    return this.values[slot * 4 + 1];
  }
  storedBytesOf(slot: number): number {
    return this.values[slot * 4 + 2];
  }
  offsetOf(slot: number): number {
    return this.values[slot * 4 + 3];
  }

  /** Bytes the table holds. */
  get bytes(): number {
    return this.keys.byteLength + this.values.byteLength;
  }
}
