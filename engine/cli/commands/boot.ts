import { spawn } from 'node:child_process';
import { accessSync, constants, existsSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { basename, resolve } from 'node:path';
import { isMounted, mountTree, mountWorkerCount, prepareMountPoint } from '../../../mount/fuse-mount.js';
import { MountTree, pointDirName } from '../../../mount/tree.js';
import { BlockvaultError } from '../../core/errors.js';
import { Repository } from '../../repo/repository.js';
import { WorkerPool } from '../../workers/pool.js';
import { parse, repoPath } from '../args.js';
import { interruptSignal, note, type Command } from '../command.js';
import { interruptedError } from '../../core/interrupt.js';

/** Runs a child without blocking the event loop (this process serves the mount it reads). */
function run(cmd: string, args: string[], stdio: 'inherit' | 'pipe', signal?: AbortSignal): Promise<{ code: number; stderr: string }> {
  return new Promise((res, rej) => {
    const child = spawn(cmd, args, { stdio: stdio === 'inherit' ? 'inherit' : ['ignore', 'ignore', 'pipe'] });
    signal?.addEventListener('abort', () => child.kill('SIGTERM'), { once: true }); // QEMU shuts down; then we unmount
    let stderr = '';
    child.stderr?.on('data', (d) => (stderr += d));
    child.on('error', (err) => rej(new BlockvaultError('USAGE', `cannot run ${cmd}: ${err.message} (install qemu-system-x86 and qemu-utils)`)));
    child.on('close', (code) => res({ code: code ?? 1, stderr }));
  });
}

function kvmUsable(): boolean {
  try {
    accessSync('/dev/kvm', constants.R_OK | constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

export const bootCommand: Command = {
  name: 'boot',
  help: `Usage: blockvault boot -r <repo> <vm>/<disk>@<id|latest> [--accel kvm|tcg] [--overlay FILE] [--memory 1G] [--verify-content] [-- extra qemu args]

Boots the restore point's disk in QEMU without restoring it first: the
repository is served read-only through FUSE and QEMU runs on a qcow2 overlay
backed by it. All the VM's writes go to the overlay, never to the repository.
The VM's serial console is this terminal (-nographic; Ctrl-A X quits QEMU).

Options:
  -r, --repo PATH   repository (or BLOCKVAULT_REPO)
  --accel kvm|tcg   hardware virtualization (default when /dev/kvm is usable)
                    or emulation (slower; works anywhere, also nested)
  --overlay FILE    where the VM's writes go (default ./<vm>-<disk>-<id>.qcow2);
                    must not exist. The overlay is kept after the VM stops:
                    delete it to discard the VM's changes. To keep them, serve
                    the backing file again (blockvault mount -r <repo> FILE.mnt)
                    and copy the VM out: qemu-img convert -O qcow2 FILE vm.qcow2
  --memory SIZE     guest memory (default 1G)
  --verify-content  re-hash every chunk the VM reads with SHA-256 (as for
                    mount; stored checksums are always checked)
  -- ARGS           passed to qemu-system-x86_64 as they are

Example:
  blockvault boot -r /srv/bv web01/sda@latest -- -vnc :1`,
  async run(argv) {
    const split = argv.indexOf('--');
    const own = split < 0 ? argv : argv.slice(0, split);
    const extra = split < 0 ? [] : argv.slice(split + 1);
    const { values, positionals } = parse('boot', own, { accel: { type: 'string' }, overlay: { type: 'string' }, memory: { type: 'string' }, 'verify-content': { type: 'boolean' } });
    if (positionals.length !== 1) throw new BlockvaultError('USAGE', 'expected one restore point, <vm>/<disk>@<id|latest> (see blockvault boot --help)');
    const accel = (values.accel as string | undefined) ?? (kvmUsable() ? 'kvm' : 'tcg');
    if (accel !== 'kvm' && accel !== 'tcg') throw new BlockvaultError('USAGE', `--accel ${JSON.stringify(accel)}: expected kvm or tcg`);
    const signal = interruptSignal(); // from here on, Ctrl-C stops the VM and unmounts cleanly
    const repo = await Repository.open(repoPath(values));
    const entry = repo.points.resolve(positionals[0]);
    const overlay = resolve((values.overlay as string | undefined) ?? `${entry.vm}-${entry.disk}-${entry.id.slice(0, 8)}.qcow2`);
    if (existsSync(overlay)) {
      await repo.close();
      throw new BlockvaultError('BAD_INPUT', `overlay ${overlay} exists; delete it (discarding that VM's changes) or choose another with --overlay`);
    }
    // The mount sits beside the overlay at a stable path, so the overlay's backing file can be served again later.
    const mnt = `${overlay}.mnt`;
    mkdirSync(mnt, { recursive: true });
    prepareMountPoint(mnt);
    const pool = new WorkerPool(mountWorkerCount());
    const handle = await mountTree(mnt, new MountTree(repo, pool, 512 * 1024 * 1024, values['verify-content'] === true), (line) => note(line));
    const cleanup = async () => {
      if (isMounted(mnt)) await handle.unmount();
      await pool.close();
      await repo.close();
      if (readdirSync(mnt).length === 0) rmSync(mnt, { recursive: true, force: true });
    };
    try {
      const backing = `${mnt}/${entry.vm}/${entry.disk}/${pointDirName(entry)}/disk.raw`;
      const created = await run('qemu-img', ['create', '-q', '-f', 'qcow2', '-F', 'raw', '-b', backing, overlay], 'pipe');
      if (created.code !== 0) throw new BlockvaultError('TARGET_IO', `cannot create overlay ${overlay}: ${created.stderr.trim()}`);
      note(`blockvault: booting ${entry.vm}/${entry.disk}@${entry.id.slice(0, 8)} from the backup (accel ${accel}); the VM writes to ${basename(overlay)}, never to the repository`);
      const qemu = ['-accel', accel, '-m', (values.memory as string | undefined) ?? '1G', '-smp', '2', '-nographic',
        '-drive', `file=${overlay},format=qcow2,if=virtio`, ...extra];
      if (signal.aborted) throw interruptedError(signal, 'the VM was not started');
      const { code } = await run('qemu-system-x86_64', qemu, 'inherit', signal);
      if (signal.aborted) throw interruptedError(signal, `the VM was stopped; its writes are in ${overlay}`);
      note(`blockvault: the VM stopped (qemu exit ${code}); its writes are in ${overlay} (delete it to discard them)`);
      return code === 0 ? 0 : 4;
    } finally {
      await cleanup();
    }
  },
};
