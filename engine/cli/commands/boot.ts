import { spawn } from 'node:child_process';
import { accessSync, constants, existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { isMounted, mountTree, mountWorkerCount, prepareMountPoint } from '../../../mount/fuse-mount.js';
import { MountTree, pointDirName } from '../../../mount/tree.js';
import { BlockvaultError } from '../../core/errors.js';
import { plural } from '../../core/human.js';
import { Repository } from '../../repo/repository.js';
import { WorkerPool } from '../../workers/pool.js';
import { parse, repoPath } from '../args.js';
import { interruptSignal, note, type Command } from '../command.js';
import { interruptedError } from '../../core/interrupt.js';
import { readGroup, resolveGroup } from '../../repo/group-store.js';
import type { PointEntry } from '../../repo/chunk-index.js';
import { bootFirmware, withSmm, type BootFirmware } from './boot-firmware.js';
import { diskInterface, vmQemuArgs } from './boot-shape.js';

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

interface BootTarget {
  isVm: boolean; entries: PointEntry[]; shape: string[]; label: string; interfaces: string[];
  /** A UEFI domain's firmware, its variable store written to varsFile (beside the overlays: the VM may change it, the repository stays as it is). */
  firmware: BootFirmware | null; varsFile: string | null;
}

/** What `spec` boots: one disk's restore point, or every disk of a VM restore point in its saved shape. */
async function bootTarget(repo: Repository, spec: string, memory: string | undefined, overlayDir: string): Promise<BootTarget> {
  if (spec.includes('/') || !spec.includes('@')) {
    const entry = repo.points.resolve(spec);
    return { isVm: false, entries: [entry], shape: ['-m', memory ?? '1G', '-smp', '2'], label: `${entry.vm}/${entry.disk}@${entry.id.slice(0, 8)}`, interfaces: ['virtio'], firmware: null, varsFile: null };
  }
  const group = resolveGroup(repo.index, spec);
  const header = await readGroup(repo.storage, group.vm, group.id);
  const entries = group.disks.map((d) => {
    const e = repo.index.point(d.point);
    if (!e) throw new BlockvaultError('CHUNK_MISSING', `VM restore point ${group.vm}@${group.id}: its disk ${d.disk} (restore point ${d.point}) is missing`);
    return e;
  });
  const varsFile = join(overlayDir, `${group.vm}-${group.id.slice(0, 8)}-VARS.fd`);
  const firmware = bootFirmware(header.machine, `${group.vm}@${group.id}`, varsFile);
  const shape = vmQemuArgs(header.machine, memory);
  return {
    isVm: true, entries, shape: firmware?.secure ? withSmm(shape) : shape, label: `${group.vm}@${group.id.slice(0, 8)} (${plural(entries.length, 'disk')})`,
    interfaces: entries.map((e) => diskInterface(header.machine, e.disk)), firmware, varsFile: firmware ? varsFile : null,
  };
}

export const bootCommand: Command = {
  name: 'boot',
  help: `Usage: blockvault boot -r <repo> <vm>/<disk>@<id|latest> [--accel kvm|tcg] [--overlay FILE] [--memory 1G] [--verify-content] [-- extra qemu args]
       blockvault boot -r <repo> <vm>@<id|latest> [--overlay-dir DIR] [options] [-- extra qemu args]

Boots the restore point's disk in QEMU without restoring it first: the
repository is served read-only through FUSE and QEMU runs on a qcow2 overlay
backed by it. All the VM's writes go to the overlay, never to the repository.
The VM's serial console is this terminal (-nographic; Ctrl-A X quits QEMU).
A VM restore point (<vm>@<id>) boots all its disks in one QEMU, in their
order; one taken from a running VM (backup --qmp/--libvirt) also gets its
saved shape: machine type, CPU count and memory, and a libvirt domain that
booted with UEFI gets the same firmware (OVMF, Secure Boot too) with its saved
variable store, copied to <vm>-<id>-VARS.fd beside the overlays.

Options:
  -r, --repo PATH   repository (or BLOCKVAULT_REPO)
  --accel kvm|tcg   hardware virtualization (default when /dev/kvm is usable)
                    or emulation (slower; works anywhere, also nested)
  --overlay FILE    where the VM's writes go (default ./<vm>-<disk>-<id>.qcow2);
                    must not exist. The overlay is kept after the VM stops:
                    delete it to discard the VM's changes. To keep them, serve
                    the backing file again (blockvault mount -r <repo> FILE.mnt)
                    and copy the VM out: qemu-img convert -O qcow2 FILE vm.qcow2
  --overlay-dir DIR for a VM restore point: where its overlays go, one
                    <vm>-<disk>-<id>.qcow2 per disk (default: .)
  --memory SIZE     guest memory (default: the saved VM's, else 1G)
  --verify-content  re-hash every chunk the VM reads with SHA-256 (as for
                    mount; stored checksums are always checked)
  -- ARGS           passed to qemu-system-x86_64 as they are

Example:
  blockvault boot -r /srv/bv web01/sda@latest -- -vnc :1`,
  async run(argv) {
    const split = argv.indexOf('--');
    const own = split < 0 ? argv : argv.slice(0, split);
    const extra = split < 0 ? [] : argv.slice(split + 1);
    const { values, positionals } = parse('boot', own, { accel: { type: 'string' }, overlay: { type: 'string' }, 'overlay-dir': { type: 'string' }, memory: { type: 'string' }, 'verify-content': { type: 'boolean' } });
    if (positionals.length !== 1) throw new BlockvaultError('USAGE', 'expected one restore point, <vm>/<disk>@<id|latest> or a VM restore point <vm>@<id|latest> (see blockvault boot --help)');
    const accel = (values.accel as string | undefined) ?? (kvmUsable() ? 'kvm' : 'tcg');
    if (accel !== 'kvm' && accel !== 'tcg') throw new BlockvaultError('USAGE', `--accel ${JSON.stringify(accel)}: expected kvm or tcg`);
    const signal = interruptSignal(); // from here on, Ctrl-C stops the VM and unmounts cleanly
    const repo = await Repository.open(repoPath(values));
    const spec = positionals[0];
    const overlayDir = resolve((values['overlay-dir'] as string | undefined) ?? '.');
    const { isVm, entries, shape, label, interfaces, firmware, varsFile } = await bootTarget(repo, spec, values.memory as string | undefined, overlayDir).catch(async (err: unknown) => { await repo.close(); throw err; });
    if (isVm && values.overlay !== undefined) { await repo.close(); throw new BlockvaultError('USAGE', '--overlay names one disk\'s overlay; a VM restore point gets one per disk: use --overlay-dir DIR'); }
    const overlays = entries.map((e) => isVm ? join(overlayDir, `${e.vm}-${e.disk}-${e.id.slice(0, 8)}.qcow2`) : resolve((values.overlay as string | undefined) ?? `${e.vm}-${e.disk}-${e.id.slice(0, 8)}.qcow2`));
    const overlay = overlays[0];
    const taken = [...overlays, ...(varsFile ? [varsFile] : [])].find((o) => existsSync(o));
    if (taken) {
      await repo.close();
      throw new BlockvaultError('BAD_INPUT', `overlay ${taken} exists; delete it (discarding that VM's changes) or choose another with ${isVm ? '--overlay-dir' : '--overlay'}`);
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
      if (firmware) {
        try {
          writeFileSync(varsFile!, firmware.vars, { mode: 0o600, flag: 'wx' });
        } catch (err) {
          throw new BlockvaultError('TARGET_IO', `cannot write the UEFI variable store ${varsFile}: ${(err as Error).message}`);
        }
        for (const line of firmware.notes) note(`blockvault: ${line}`);
      }
      const drives: string[] = firmware ? [...firmware.args] : [];
      for (const [k, e] of entries.entries()) {
        const backing = `${mnt}/${e.vm}/${e.disk}/${pointDirName(e)}/disk.raw`;
        const created = await run('qemu-img', ['create', '-q', '-f', 'qcow2', '-F', 'raw', '-b', backing, overlays[k]], 'pipe');
        if (created.code !== 0) throw new BlockvaultError('TARGET_IO', `cannot create overlay ${overlays[k]}: ${created.stderr.trim()}`);
        drives.push('-drive', `file=${overlays[k]},format=qcow2,if=${interfaces[k]}`);
      }
      const writes = [...overlays, ...(firmware ? [varsFile!] : [])];
      note(`blockvault: booting ${label} from the backup (accel ${accel}, ${shape.join(' ')}${firmware ? ', UEFI' : ''}); the VM writes to ${writes.map((o) => basename(o)).join(', ')}, never to the repository`);
      const qemu = ['-accel', accel, ...shape, '-nographic', ...drives, ...extra];
      if (signal.aborted) throw interruptedError(signal, 'the VM was not started');
      const { code } = await run('qemu-system-x86_64', qemu, 'inherit', signal);
      if (signal.aborted) throw interruptedError(signal, `the VM was stopped; its writes are in ${writes.join(', ')}`);
      note(`blockvault: the VM stopped (qemu exit ${code}); its writes are in ${writes.join(', ')} (delete ${writes.length > 1 ? 'them' : 'it'} to discard them)`);
      return code === 0 ? 0 : 4;
    } finally {
      await cleanup();
    }
  },
};
