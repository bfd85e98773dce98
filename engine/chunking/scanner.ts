// The scanner a backup cuts with: the native one when the addon loaded (the
// same cuts, faster), else the TypeScript reference (nativeApi() says so once).
import { nativeApi } from '../core/native.js';
import { tsScanner, type ChunkerSpec } from './chunker.js';
import type { CdcScanner } from './fastcdc.js';
import { NativeAlignedScanner, NativeFastCdcScanner } from './native-scanners.js';

/** startBytes: the disk offset the scan starts at, a cut (aligned-cdc cuts zero runs on a grid of absolute offsets). */
export function makeScanner(spec: ChunkerSpec, startBytes = 0): CdcScanner {
  const api = nativeApi();
  if (api && spec.kind === 'aligned-cdc') return new NativeAlignedScanner(spec, api, startBytes);
  if (api && spec.kind === 'cdc') return new NativeFastCdcScanner(spec, api);
  return tsScanner(spec, startBytes);
}
