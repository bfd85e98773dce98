// Opens what `backup` was given: an NBD URI, a qemu image format served by a
// private read-only qemu-nbd, or a raw image / block device / stdin.
import { BlockvaultError } from '../core/errors.js';
import { NbdSource } from '../nbd/nbd-source.js';
import { imageFormat, startQemuNbd, type QemuNbd } from '../nbd/qemu-nbd.js';
import { isNbdUri, parseNbdUri } from '../nbd/uri.js';
import { openSource, type Source } from '../source/source.js';
import type { BitmapSource } from './plan.js';

export interface OpenedSource {
  source: Source;
  /** Set when a dirty bitmap was asked for and the source can speak of one. */
  bitmapSource: BitmapSource | null;
  /** Why the bitmap is not available, when the server said so. */
  bitmapProblem?: string;
  info: Record<string, unknown>;
  close(): Promise<void>;
}

/** Starts a private qemu-nbd and connects to it (retrying until it listens, failing if it exits). */
async function serveImage(path: string, format: string, bitmap?: string): Promise<{ source: NbdSource; server: QemuNbd; bitmapProblem?: string }> {
  const server = await startQemuNbd(path, format, bitmap);
  const deadline = Date.now() + 10_000;
  for (;;) {
    try {
      return { source: await NbdSource.open(server.address, bitmap), server };
    } catch (err) {
      const exited = server.exitReason();
      if (exited !== null || Date.now() >= deadline || !(err instanceof BlockvaultError)) {
        await server.stop();
        if (exited !== null) throw new BlockvaultError('SOURCE_IO', `qemu-nbd could not serve ${path} as ${format}${bitmap ? ` with bitmap ${bitmap}` : ''}: ${exited}`);
        throw err;
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  }
}

export async function openBackupSource(spec: string, options: { format?: string; bitmap?: string }): Promise<OpenedSource> {
  if (isNbdUri(spec)) {
    const source = await NbdSource.open(parseNbdUri(spec), options.bitmap);
    return { source, bitmapSource: source, info: { kind: 'nbd', uri: spec }, close: () => source.close() };
  }
  const format = spec === '-' ? 'raw' : imageFormat(spec, options.format);
  if (format !== 'raw') {
    const served = await serveImage(spec, format, options.bitmap).catch(async (err: BlockvaultError) => {
      if (!options.bitmap) throw err;
      // qemu-nbd refuses a missing or inconsistent bitmap: go on without it; the plan says why.
      return { ...(await serveImage(spec, format)), bitmapProblem: err.message };
    });
    return {
      source: served.source, bitmapSource: served.source, bitmapProblem: served.bitmapProblem, info: { kind: 'qemu-nbd', path: spec, format },
      close: async () => { await served.source.close(); await served.server.stop(); },
    };
  }
  if (options.bitmap) {
    throw new BlockvaultError('USAGE', `--bitmap needs an NBD export or a qemu image with bitmaps (qcow2), not ${spec === '-' ? 'stdin' : `the raw image ${spec}`}; use --changed for a changed-extents list`);
  }
  const source = await openSource(spec);
  return { source, bitmapSource: null, info: { kind: spec === '-' ? 'stdin' : 'file', path: spec }, close: () => source.close() };
}
