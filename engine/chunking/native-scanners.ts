// The chunkers' scanners with their hot loops in the native addon
// (native/src/cdc.rs): the same state machine and the same cuts as the
// TypeScript ones they extend (which stay the reference: the tests compare
// both on random and real data), several times faster.
import type { nativeApi } from '../core/native.js';
import { AlignedCdcScanner, alignBytes } from './aligned-cdc.js';
import { FastCdcScanner, type CdcBounds } from './fastcdc.js';

type Api = NonNullable<ReturnType<typeof nativeApi>>;

export class NativeAlignedScanner extends AlignedCdcScanner {
  private out = new Uint32Array(0);
  private readonly state = new Float64Array(3);
  constructor(bounds: CdcBounds, private readonly api: Api, startBytes = 0) {
    super(bounds, startBytes);
  }

  override push(data: Uint8Array): number[] {
    if (this.partial) return super.push(data); // refuses, as the reference does
    const whole = data.length - (data.length % alignBytes);
    if (this.out.length < whole / alignBytes + 1) this.out = new Uint32Array(whole / alignBytes + 1);
    this.state[0] = this.blocks;
    this.state[1] = this.openZero ? 1 : 0;
    this.state[2] = this.position;
    const n = this.api.alignedCdcCuts(data.subarray(0, whole), this.state, this.minBlocks, this.avgBlocks, this.maxBlocks, this.maskStrict >>> 0, this.maskLoose >>> 0, this.out);
    [this.blocks, this.openZero, this.position] = [this.state[0], this.state[1] !== 0, this.state[2]];
    if (whole < data.length) this.partial = true; // finish() adds it to the last chunk
    this.tailBytes = data.length - whole;
    return Array.from(this.out.subarray(0, n));
  }
}

export class NativeFastCdcScanner extends FastCdcScanner {
  private out = new Uint32Array(0);
  private readonly state = new Uint32Array(2);
  constructor(bounds: CdcBounds, private readonly api: Api) {
    super(bounds);
  }

  override push(data: Uint8Array): number[] {
    const room = Math.floor(data.length / this.bounds.minBytes) + 2;
    if (this.out.length < room) this.out = new Uint32Array(room);
    this.state[0] = this.hash;
    this.state[1] = this.length;
    const { minBytes, avgBytes, maxBytes } = this.bounds;
    const n = this.api.fastCdcCuts(data, this.state, minBytes, avgBytes, maxBytes, this.maskStrict >>> 0, this.maskLoose >>> 0, this.out);
    this.hash = this.state[0] | 0;
    this.length = this.state[1];
    return Array.from(this.out.subarray(0, n));
  }
}
