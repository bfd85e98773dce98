// The disks of a running QEMU as QMP describes them (query-block): each
// writable disk's name, its top block node, size, format and dirty bitmaps.
// Read-only media (CD-ROMs, a read-only drive) and empty drives are skipped:
// they change nothing a restore needs.
import { BlockvaultError } from '../core/errors.js';
import type { QmpClient } from './client.js';

export interface QmpBitmap { name: string; recording: boolean; persistent: boolean; busy: boolean; inconsistent: boolean; granularity: number }

export interface VmDisk {
  /** The name a user gives to --disks and sees in the repository: the device's qdev id, else its drive name. */
  name: string;
  /** The block node the device's drive is attached to (where bitmaps live and backups start). */
  node: string;
  /** The drive (BlockBackend) name; empty for -blockdev attached devices. */
  device: string;
  qdev: string;
  sizeBytes: number;
  format: string;
  file: string;
  bitmaps: QmpBitmap[];
}

interface BlockInfo {
  device: string;
  qdev?: string;
  inserted?: {
    'node-name': string; ro: boolean; drv: string; file: string;
    image: { 'virtual-size': number };
    'dirty-bitmaps'?: Array<{ name?: string; recording: boolean; persistent: boolean; busy: boolean; inconsistent?: boolean; granularity: number }>;
  };
}

/** The qdev id out of "/machine/peripheral/<id>/virtio-backend" and similar paths. */
function qdevName(qdev: string | undefined): string | null {
  const m = /^\/machine\/peripheral\/([^/]+)/.exec(qdev ?? '');
  return m ? m[1] : null;
}

export async function listDisks(qmp: QmpClient): Promise<{ disks: VmDisk[]; skipped: string[] }> {
  const blocks = await qmp.execute<BlockInfo[]>('query-block');
  const disks: VmDisk[] = [];
  const skipped: string[] = [];
  for (const b of blocks) {
    const name = qdevName(b.qdev) ?? b.device;
    if (!name) continue; // a node no guest device uses
    const i = b.inserted;
    if (!i) { skipped.push(`${name} (no medium)`); continue; }
    if (i.ro) { skipped.push(`${name} (read-only)`); continue; }
    disks.push({
      name, node: i['node-name'], device: b.device, qdev: b.qdev ?? '', sizeBytes: i.image['virtual-size'], format: i.drv, file: i.file,
      bitmaps: (i['dirty-bitmaps'] ?? []).filter((m) => typeof m.name === 'string').map((m) => ({
        name: m.name!, recording: m.recording, persistent: m.persistent, busy: m.busy, inconsistent: m.inconsistent === true, granularity: m.granularity,
      })),
    });
  }
  return { disks, skipped };
}

/** The disks --disks names (default: every writable one), in the VM's order; an unknown name is refused naming the known ones. */
export function selectDisks(all: VmDisk[], skipped: string[], wanted: string[] | undefined, vm: string): VmDisk[] {
  if (!wanted) {
    if (all.length === 0) throw new BlockvaultError('BAD_INPUT', `VM ${vm} has no writable disk to back up${skipped.length ? ` (skipped: ${skipped.join(', ')})` : ''}`);
    return all;
  }
  for (const w of wanted) {
    if (!all.some((d) => d.name === w)) {
      const ro = skipped.find((s) => s.startsWith(`${w} (`));
      throw new BlockvaultError('BAD_INPUT', ro ? `--disks ${w}: that disk is skipped: ${ro}` : `--disks ${w}: VM ${vm} has no disk of that name; its writable disks are ${all.map((d) => d.name).join(', ') || 'none'}`);
    }
  }
  return all.filter((d) => wanted.includes(d.name));
}
