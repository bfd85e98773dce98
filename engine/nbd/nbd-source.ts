// A backup Source over an NBD export. base:allocation tells which regions
// read as zeros (NBD_STATE_ZERO): those are recorded as zero chunks and never
// read. A hole not flagged zero is read: the protocol does not promise zeros.
import { BlockvaultError } from '../core/errors.js';
import type { Source } from '../source/source.js';
import { NbdClient } from './client.js';
import { stateDirty, stateZero } from './protocol.js';
import type { NbdAddress } from './uri.js';
import type { ByteExtent } from '../cbt/extents-file.js';

export const allocationContext = 'base:allocation';
export const bitmapContext = (name: string) => `qemu:dirty-bitmap:${name}`;


export class NbdSource implements Source {
  readonly sizeBytes: number;
  dataExtents: ReadonlyArray<readonly [number, number]> | null = null;

  private constructor(readonly client: NbdClient) {
    this.sizeBytes = client.sizeBytes;
  }

  get description(): string {
    return this.client.description;
  }

  /** Connects; asks for base:allocation and, when given, a dirty bitmap's context. */
  static async open(address: NbdAddress, bitmap?: string, refusedRetryMs = 0): Promise<NbdSource> {
    const contexts = [allocationContext, ...(bitmap ? [bitmapContext(bitmap)] : [])];
    const source = new NbdSource(await NbdClient.connect(address, contexts, refusedRetryMs));
    if (source.client.contexts.has(allocationContext)) await source.loadAllocation();
    return source;
  }

  private async loadAllocation(): Promise<void> {
    const extents = await this.client.blockStatus(allocationContext, 0, this.sizeBytes);
    const data: Array<[number, number]> = [];
    let at = 0;
    for (const e of extents) {
      if (!(e.flags & stateZero)) {
        const last = data[data.length - 1];
        if (last && last[1] === at) last[1] = at + e.length;
        else data.push([at, at + e.length]);
      }
      at += e.length;
    }
    this.dataExtents = data;
  }

  hasBitmap(name: string): boolean {
    return this.client.contexts.has(bitmapContext(name));
  }

  /** The regions the bitmap marks dirty, merged, in order. */
  async dirtyExtents(name: string): Promise<ByteExtent[]> {
    const extents = await this.client.blockStatus(bitmapContext(name), 0, this.sizeBytes);
    const dirty: ByteExtent[] = [];
    let at = 0;
    for (const e of extents) {
      if (e.flags & stateDirty) {
        const last = dirty[dirty.length - 1];
        if (last && last.start + last.length === at) last.length += e.length;
        else dirty.push({ start: at, length: e.length });
      }
      at += e.length;
    }
    return dirty;
  }

  async read(into: Uint8Array, offset: number): Promise<number> {
    const length = Math.min(into.length, this.sizeBytes - offset);
    if (length <= 0) return 0;
    try {
      await this.client.read(offset, into.subarray(0, length));
    } catch (err) {
      if (err instanceof BlockvaultError) throw err;
      throw new BlockvaultError('SOURCE_IO', `${this.description}: read at offset ${offset} failed: ${(err as Error).message}`, { cause: err });
    }
    return length;
  }

  close(): Promise<void> {
    return this.client.close();
  }
}
