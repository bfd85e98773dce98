// The native scanners (native/src/cdc.rs) against the TypeScript reference:
// the same cut points on random data, on real files, and streamed in odd pieces.
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { tsScanner, type ChunkerSpec } from '../../engine/chunking/chunker.js';
import type { CdcScanner } from '../../engine/chunking/fastcdc.js';
import { NativeAlignedScanner, NativeFastCdcScanner } from '../../engine/chunking/native-scanners.js';
import { nativeApi } from '../../engine/core/native.js';

const specs: ChunkerSpec[] = [
  { kind: 'aligned-cdc', minBytes: 16384, avgBytes: 65536, maxBytes: 262144 },
  { kind: 'aligned-cdc', minBytes: 4096, avgBytes: 32768, maxBytes: 131072 },
  { kind: 'cdc', minBytes: 16384, avgBytes: 65536, maxBytes: 262144 },
  { kind: 'cdc', minBytes: 4096, avgBytes: 8192, maxBytes: 65536 },
];

function cutsOf(scanner: CdcScanner, data: Buffer, piece: number): number[] {
  const out: number[] = [];
  for (let at = 0; at < data.length; at += piece) out.push(...scanner.push(data.subarray(at, Math.min(data.length, at + piece))));
  const last = scanner.finish();
  return last > 0 ? [...out, last] : out;
}

/** About 24 MiB of real files from this machine (binaries, libraries, text), one after another. */
function realData(): Buffer {
  const parts: Buffer[] = [];
  let total = 0;
  for (const dir of ['/usr/bin', '/usr/lib/x86_64-linux-gnu', '/usr/share/doc']) {
    for (const name of readdirSync(dir).sort()) {
      if (total > 24 << 20) break;
      const path = join(dir, name);
      try {
        if (!statSync(path).isFile()) continue;
        const bytes = readFileSync(path);
        parts.push(bytes);
        total += bytes.length;
      } catch { /* unreadable */ }
    }
  }
  return Buffer.concat(parts);
}

describe('native CDC scanners', () => {
  const api = nativeApi();
  const native = (spec: ChunkerSpec): CdcScanner => (spec.kind === 'aligned-cdc' ? new NativeAlignedScanner(spec, api!) : new NativeFastCdcScanner(spec as Extract<ChunkerSpec, { maxBytes: number }>, api!));

  it('are built and load', () => {
    expect(api).not.toBeNull();
  });

  it('cut random and real data exactly where the TypeScript scanners do, in any pieces', () => {
    // Random, real files, and a disk-like mix: data, a zero run from an odd block, data again.
    const inputs = [randomBytes(9 << 20), realData(), Buffer.concat([randomBytes((1 << 20) + 12288), Buffer.alloc(3 << 20), randomBytes(5 << 16), Buffer.alloc(40960), randomBytes(777)])];
    for (const data of inputs) {
      for (const spec of specs) {
        // aligned-cdc streams take whole blocks but for the last piece.
        const piece = spec.kind === 'aligned-cdc' ? 4096 * 37 : 100_003;
        const reference = cutsOf(tsScanner(spec), data, 4 << 20);
        expect(reference.length).toBeGreaterThan(10);
        expect(cutsOf(native(spec), data, 4 << 20), `${spec.kind} ${data.length}`).toEqual(reference);
        expect(cutsOf(native(spec), data, piece)).toEqual(reference);
        if (spec.kind === 'aligned-cdc') {
          // Started elsewhere on a disk (an increment's region): zero runs cut on the same absolute grid.
          const at = 5 * 4096;
          expect(cutsOf(new NativeAlignedScanner(spec as Extract<ChunkerSpec, { maxBytes: number }>, api!, at), data, piece)).toEqual(cutsOf(tsScanner(spec, at), data, 4 << 20));
        }
      }
    }
  });

  it('refuse bad arguments with a message, not a crash', () => {
    const state = () => new Float64Array([0, 1, 0]);
    expect(() => api!.alignedCdcCuts(new Uint8Array(4096), state(), 8, 4, 16, 1, 1, new Uint32Array(4))).toThrow(/alignedCdcCuts\(data/);
    expect(() => api!.alignedCdcCuts(new Uint8Array(4096), new Float64Array([0, 1, 100]), 1, 2, 3, 1, 1, new Uint32Array(4))).toThrow(/alignedCdcCuts\(data/);
    expect(() => api!.fastCdcCuts(new Uint8Array(10), new Uint32Array(1), 1, 2, 3, 1, 1, new Uint32Array(4))).toThrow(/fastCdcCuts\(data/);
    expect(() => api!.alignedCdcCuts(randomBytes(1 << 20), state(), 1, 2, 3, 0, 0, new Uint32Array(1))).toThrow(/no room/);
  });
});
