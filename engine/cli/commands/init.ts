import { cdcBounds, checkChunker, describeChunker, parseChunkerKind, type ChunkerSpec } from '../../chunking/chunker.js';
import { BlockvaultError } from '../../core/errors.js';
import { exactBytes } from '../../core/human.js';
import { cdcAvgBytesDefault, chunkBytesDefault, packBytesDefault, zstdLevelDefault } from '../../core/limits.js';
import { configChunker } from '../../format/config-format.js';
import { initRepository } from '../../repo/repository.js';
import { intOption, parse, repoPath, sizeOption } from '../args.js';
import { printJson, say, type Command } from '../command.js';

export const initCommand: Command = {
  name: 'init',
  help: `Usage: blockvault init -r <repo> [--chunker fixed|aligned-cdc|cdc] [--chunk-size 64K] [--zstd-level 1] [--pack-size 128M]

Creates a repository in an empty or new directory. The chunker and chunk size
are fixed for the life of the repository.

Chunkers:
  fixed         every disk is cut into chunks of the chunk size at fixed
                offsets: a changed guest block dirties exactly one chunk, and
                block-level clones of a template dedup perfectly (default)
  aligned-cdc   cuts chosen by content, only on 4 KiB block boundaries: the
                same files at other places on two disks (VMs installed apart,
                rebuilt, restored file by file) still dedup
  cdc           FastCDC, cuts at any byte: for images and exports whose data
                is not 4 KiB-aligned (a header in front, a tar or OVA)

Options:
  -r, --repo PATH       repository directory (or set BLOCKVAULT_REPO)
  --chunker KIND        fixed, aligned-cdc or cdc (default fixed; see docs/BENCHMARKS.md)
  --chunk-size SIZE     fixed: the chunk size, a power of two, 64K..4M (default
                        ${chunkBytesDefault / 1024}K); cdc kinds: the average (default ${cdcAvgBytesDefault / 1024}K)
  --chunk-min SIZE      cdc kinds: the smallest chunk (default a quarter of the average)
  --chunk-max SIZE      cdc kinds: the largest chunk (default four times the average)
  --zstd-level N        zstd level for new chunks, 1..19 (default ${zstdLevelDefault})
  --pack-size SIZE      target size of pack files, 1M..1G (default ${packBytesDefault / 1024 / 1024}M)
  --json                print the new repository's config as JSON

Examples:
  blockvault init -r /srv/bv
  blockvault init -r /srv/bv-cdc --chunker aligned-cdc`,
  async run(argv) {
    const { values } = parse('init', argv, {
      chunker: { type: 'string' }, 'chunk-size': { type: 'string' }, 'chunk-min': { type: 'string' }, 'chunk-max': { type: 'string' },
      'zstd-level': { type: 'string' }, 'pack-size': { type: 'string' },
    });
    const root = repoPath(values);
    const chunker = chunkerOption(values);
    const config = await initRepository(root, {
      chunker,
      chunkBytes: sizeOption(values, 'chunk-size', chunkBytesDefault),
      zstdLevel: intOption(values, 'zstd-level', zstdLevelDefault),
      packBytesTarget: sizeOption(values, 'pack-size', packBytesDefault),
    });
    if (values.json) printJson({ repo: root, ...config });
    else say(`created repository ${root} (chunks ${describeChunker(configChunker(config), config.chunkBytes)}, zstd level ${config.zstdLevel}, packs of ${exactBytes(config.packBytesTarget)})`);
    return 0;
  },
};

/** --chunker with its sizes; sizes that only a CDC chunker has are refused for fixed chunks. */
function chunkerOption(values: Record<string, unknown>): ChunkerSpec {
  const kind = parseChunkerKind((values.chunker as string | undefined) ?? 'fixed', '--chunker');
  if (kind === 'fixed') {
    for (const name of ['chunk-min', 'chunk-max']) {
      if (values[name] !== undefined) throw new BlockvaultError('USAGE', `--${name} applies to content-defined chunkers only (--chunker aligned-cdc or cdc)`);
    }
    return { kind };
  }
  const avg = sizeOption(values, 'chunk-size', cdcAvgBytesDefault);
  const given = (name: string) => (values[name] === undefined ? undefined : sizeOption(values, name, 0));
  const spec: ChunkerSpec = { kind, ...cdcBounds(avg, given('chunk-min'), given('chunk-max')) };
  checkChunker(spec, `--chunker ${kind} with --chunk-size (the average) ${values['chunk-size'] ?? 'default'}, --chunk-min ${values['chunk-min'] ?? 'default'}, --chunk-max ${values['chunk-max'] ?? 'default'}`);
  return spec;
}
