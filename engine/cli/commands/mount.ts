import { isMounted, mountReadaheadBytes, mountTree, mountWorkerCount, prepareMountPoint } from '../../../mount/fuse-mount.js';
import { whenAborted } from '../../core/interrupt.js';
import { MountTree } from '../../../mount/tree.js';
import { humanBytes } from '../../core/human.js';
import { Repository } from '../../repo/repository.js';
import { WorkerPool } from '../../workers/pool.js';
import { onePositional, parse, repoPath, sizeOption } from '../args.js';
import { interruptSignal, note, type Command } from '../command.js';

export const mountCommand: Command = {
  name: 'mount',
  help: `Usage: blockvault mount -r <repo> <mountpoint> [--cache-size 256M] [--readahead 1M] [--verify-content]

Serves the repository read-only through FUSE, in the foreground, until Ctrl-C
or \`blockvault umount <mountpoint>\`:

  <mountpoint>/<vm>/<disk>/<UTC time>_<id>/disk.raw        the whole disk (QEMU can boot it)
  <mountpoint>/<vm>/<disk>/<UTC time>_<id>/part<N>.raw     each MBR/GPT partition
  <mountpoint>/<vm>/<disk>/<UTC time>_<id>/files/part<N>/  the files of ext2/3/4 and FAT partitions
  <mountpoint>/<vm>/<disk>/latest                          the newest restore point

Restore points backed up while mounted appear within a second. Every byte
read is checked against its stored checksums (XXH64 of the record header and
of the stored bytes, the chunk id in the header): damage on disk fails that
read with EIO (and is logged), nothing else. --verify-content also re-hashes
every chunk with SHA-256 against its id, as restore and verify always do; it
costs about a quarter of the sequential read rate. A mount point left stale
by a killed mount is cleaned up automatically.

Sequential reads are prefetched and decoded ahead on all cores but one (that
one carries the FUSE requests). As root, the mount's kernel readahead is
raised so the kernel asks for several blocks at once (otherwise it keeps one
128 KiB request in flight: up to 1.6x slower).

Options:
  -r, --repo PATH      repository (or BLOCKVAULT_REPO)
  --cache-size SIZE    decompressed chunks kept in memory (default 256M)
  --readahead SIZE     kernel readahead for the mount (default 1M; 0 keeps the kernel's)
  --verify-content     re-hash every chunk read with SHA-256 (slower; see above)`,
  async run(argv) {
    const { values, positionals } = parse('mount', argv, { 'cache-size': { type: 'string' }, readahead: { type: 'string' }, 'verify-content': { type: 'boolean' } });
    const mnt = onePositional('mount', positionals, 'mount point');
    const cacheBytes = sizeOption(values, 'cache-size', 256 * 1024 * 1024);
    const readaheadBytes = sizeOption(values, 'readahead', mountReadaheadBytes);
    const interrupted = whenAborted(interruptSignal()); // from here on, Ctrl-C unmounts cleanly
    prepareMountPoint(mnt);
    const repo = await Repository.open(repoPath(values));
    const pool = new WorkerPool(mountWorkerCount());
    const tree = new MountTree(repo, pool, cacheBytes, values['verify-content'] === true);
    let handle;
    try {
      await tree.warm();
      handle = await mountTree(mnt, tree, (line) => note(line), readaheadBytes);
    } catch (err) {
      await pool.close();
      await repo.close();
      throw err;
    }
    note(`blockvault: mounted ${repo.root} at ${mnt} (read-only, chunk cache ${humanBytes(cacheBytes)}); Ctrl-C or \`blockvault umount ${mnt}\` to unmount`);
    // Serve until unmounted from outside (blockvault umount / fusermount -u) or interrupted (Ctrl-C, SIGTERM).
    let timer: NodeJS.Timeout | undefined;
    const unmounted = new Promise<void>((resolve) => {
      timer = setInterval(() => { if (!isMounted(mnt)) resolve(); }, 500);
    });
    await Promise.race([unmounted, interrupted]);
    clearInterval(timer);
    await handle.unmount(); // also when unmounted from outside: release fuse-native's thread, or the process lingers
    await pool.close();
    await repo.close();
    note(`blockvault: ${mnt} unmounted`);
    return 0;
  },
};
