import { statSync } from 'node:fs';
import { unmountPath } from '../../../mount/fuse-mount.js';
import { onePositional, parse } from '../args.js';
import { note, type Command } from '../command.js';

export const umountCommand: Command = {
  name: 'umount',
  help: `Usage: blockvault umount <mountpoint>

Unmounts a mount made by \`blockvault mount\`; the serving process then exits.
A mount point left stale by a killed process (ENOTCONN) is cleaned up too.`,
  async run(argv) {
    const { positionals } = parse('umount', argv, {});
    const mnt = onePositional('umount', positionals, 'mount point');
    let stale = false;
    try {
      statSync(mnt);
    } catch (err) {
      stale = (err as NodeJS.ErrnoException).code === 'ENOTCONN';
    }
    unmountPath(mnt, stale);
    note(`blockvault: unmounted ${mnt}${stale ? ' (it was stale)' : ''}`);
    return 0;
  },
};
