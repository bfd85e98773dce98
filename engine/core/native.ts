// Loads blockvault's native addon (native/, built by setup): holes, page-cache hints. It is an
// optimization only: without it, blockvault says so once and reads holes.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

interface NativeApi {
  dataExtents(fd: number, sizeBytes: number): number[];
  /** posix_fadvise(DONTNEED): drops a range's clean pages from the page cache. */
  dropCache(fd: number, offset: number, length: number): void;
  /** posix_fadvise(WILLNEED): the kernel reads a range into the page cache in the background. */
  willNeed(fd: number, offset: number, length: number): void;
  /** The view's memory address modulo `alignment` (O_DIRECT writes need 0 at 4096). */
  misalignment(view: Uint8Array, alignment: number): number;
  /** sync_file_range(WRITE): starts writeback of a range's dirty pages; does not wait for it. */
  startWriteback(fd: number, offset: number, length: number): void;
  /** aligned CDC over data's whole blocks (native/src/cdc.rs), state [blocks, openZero, position] carried in place: out[0..n) cut lengths; returns n. */
  alignedCdcCuts(data: Uint8Array, state: Float64Array, minBlocks: number, avgBlocks: number, maxBlocks: number, maskStrict: number, maskLoose: number, out: Uint32Array): number;
  /** FastCDC over data, state [hash, length] carried in place; out[0..n) cut lengths; returns n. */
  fastCdcCuts(data: Uint8Array, state: Uint32Array, min: number, avg: number, max: number, maskStrict: number, maskLoose: number, out: Uint32Array): number;
}

let api: NativeApi | null | undefined;
let warned = false;

export function nativeApi(): NativeApi | null {
  if (api !== undefined) return api;
  if (process.env.BLOCKVAULT_TEST_NO_NATIVE) {
    // Tests of the fallback: as if the addon were not built.
    api = null;
    warnOnce('native addon disabled (BLOCKVAULT_TEST_NO_NATIVE)');
    return api;
  }
  const candidates = ['../../native/blockvault-native.linux-x64-gnu.node', '../../../native/blockvault-native.linux-x64-gnu.node'];
  api = null;
  for (const rel of candidates) {
    const path = fileURLToPath(new URL(rel, import.meta.url));
    if (!existsSync(path)) continue;
    try {
      api = createRequire(import.meta.url)(path) as NativeApi;
      break;
    } catch (err) {
      warnOnce(`cannot load ${path} (${(err as Error).message})`);
    }
  }
  if (!api) warnOnce('native addon not built');
  return api;
}

function warnOnce(why: string): void {
  if (warned || process.env.BLOCKVAULT_QUIET_NATIVE) return;
  warned = true;
  process.stderr.write(`blockvault: ${why}; sparse files are read in full and chunk boundaries found by the slower TypeScript scanners (run npm run build:native)\n`);
}
