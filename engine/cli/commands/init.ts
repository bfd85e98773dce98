import { exactBytes } from '../../core/human.js';
import { chunkBytesDefault, packBytesDefault, zstdLevelDefault } from '../../core/limits.js';
import { initRepository } from '../../repo/repository.js';
import { intOption, parse, repoPath, sizeOption } from '../args.js';
import { printJson, say, type Command } from '../command.js';

export const initCommand: Command = {
  name: 'init',
  help: `Usage: blockvault init -r <repo> [--chunk-size 64K] [--zstd-level 1] [--pack-size 128M]

Creates a repository in an empty or new directory. The chunk size is fixed
for the life of the repository: every disk is cut into chunks of this size at
fixed offsets, so a changed guest block dirties exactly one chunk.

Options:
  -r, --repo PATH       repository directory (or set BLOCKVAULT_REPO)
  --chunk-size SIZE     power of two, 64K..4M (default ${chunkBytesDefault / 1024}K: small chunks
                        keep scattered guest writes cheap; see docs/BENCHMARKS.md)
  --zstd-level N        zstd level for new chunks, 1..19 (default ${zstdLevelDefault})
  --pack-size SIZE      target size of pack files, 1M..1G (default ${packBytesDefault / 1024 / 1024}M)
  --json                print the new repository's config as JSON

Example:
  blockvault init -r /srv/bv`,
  async run(argv) {
    const { values } = parse('init', argv, { 'chunk-size': { type: 'string' }, 'zstd-level': { type: 'string' }, 'pack-size': { type: 'string' } });
    const root = repoPath(values);
    const config = await initRepository(root, {
      chunkBytes: sizeOption(values, 'chunk-size', chunkBytesDefault),
      zstdLevel: intOption(values, 'zstd-level', zstdLevelDefault),
      packBytesTarget: sizeOption(values, 'pack-size', packBytesDefault),
    });
    if (values.json) printJson({ repo: root, ...config });
    else say(`created repository ${root} (chunk size ${exactBytes(config.chunkBytes)}, zstd level ${config.zstdLevel}, packs of ${exactBytes(config.packBytesTarget)})`);
    return 0;
  },
};
