// The dirty-bitmap lifecycle on a running VM, arranged so no guest write is
// ever missed by the next increment (docs/FORMAT.md "VM backups over QMP"):
//  - each committed restore point records the bitmap that began recording at
//    its freeze instant (`qmpBitmap` in its source);
//  - the freeze transaction disables that bitmap ("old": changes since the
//    parent, up to the freeze) and adds a new one ("new": changes since);
//  - after the VM restore point is committed, old is removed;
//  - on any failure, new is merged back into old, which records again, in one
//    transaction: the disk is as if this run never happened;
//  - a run killed before either finds both; settle() merges every other
//    blockvault bitmap into the one its parent recorded. Extra bits only cost
//    reads; a missing bit would lose a change, so merging is always the way.
import type { QmpClient } from './client.js';
import type { VmDisk } from './vm-disks.js';

export const bitmapPrefix = 'blockvault-';

export function newBitmapName(now = Date.now()): string {
  return `${bitmapPrefix}${now.toString(36)}-${process.pid.toString(36)}`;
}

export interface Settled {
  /** The parent's bitmap, usable as the frozen "old" bitmap of this run; null: full read. */
  old: string | null;
  /** Why there is none, for the point's recorded reason. */
  problem?: string;
}

/**
 * Puts a disk's blockvault bitmaps in order before a run: keeps `expected`
 * (the parent's) recording, with every other blockvault bitmap merged in, or
 * removes them all when `expected` is missing or unusable.
 */
export async function settleBitmaps(qmp: QmpClient, disk: VmDisk, expected: string | null): Promise<Settled> {
  const ours = disk.bitmaps.filter((b) => b.name.startsWith(bitmapPrefix));
  const keep = expected ? ours.find((b) => b.name === expected) : undefined;
  const others = ours.filter((b) => b !== keep);
  let problem: string | undefined;
  if (!expected) problem = 'no earlier restore point of this disk taken over QMP';
  else if (!keep) problem = `dirty bitmap ${expected} of the parent is not on node ${disk.node} (removed, or the VM restarted and it was not persistent)`;
  else if (keep.inconsistent) problem = `dirty bitmap ${expected} is marked inconsistent (QEMU stopped without saving it)`;
  if (problem || !keep) {
    const actions = ours.map((b) => ({ type: 'block-dirty-bitmap-remove', data: { node: disk.node, name: b.name } }));
    if (actions.length) await qmp.execute('transaction', { actions });
    return { old: null, problem };
  }
  const actions: Array<Record<string, unknown>> = [];
  if (others.length) actions.push({ type: 'block-dirty-bitmap-merge', data: { node: disk.node, target: keep.name, bitmaps: others.map((b) => b.name) } });
  if (!keep.recording) actions.push({ type: 'block-dirty-bitmap-enable', data: { node: disk.node, name: keep.name } });
  for (const b of others) actions.push({ type: 'block-dirty-bitmap-remove', data: { node: disk.node, name: b.name } });
  if (actions.length) await qmp.execute('transaction', { actions });
  return { old: keep.name };
}

/** The freeze transaction's bitmap actions for one disk. */
export function freezeActions(disk: VmDisk, old: string | null, fresh: string): Array<Record<string, unknown>> {
  return [
    ...(old ? [{ type: 'block-dirty-bitmap-disable', data: { node: disk.node, name: old } }] : []),
    // Persistent where the format can keep it (qcow2): an increment survives a VM restart.
    { type: 'block-dirty-bitmap-add', data: { node: disk.node, name: fresh, persistent: disk.format === 'qcow2' } },
  ];
}

/** After commit: old has served; new goes on recording for the next run. */
export async function commitBitmaps(qmp: QmpClient, disks: Array<{ disk: VmDisk; old: string | null }>): Promise<void> {
  const actions = disks.filter((d) => d.old).map((d) => ({ type: 'block-dirty-bitmap-remove', data: { node: d.disk.node, name: d.old } }));
  if (actions.length) await qmp.execute('transaction', { actions });
}

/** After a failure: fold new back into old and let old record again, as before the run. */
export async function rollbackBitmaps(qmp: QmpClient, disks: Array<{ disk: VmDisk; old: string | null; fresh: string }>): Promise<void> {
  const actions: Array<Record<string, unknown>> = [];
  for (const { disk, old, fresh } of disks) {
    if (old) {
      actions.push({ type: 'block-dirty-bitmap-merge', data: { node: disk.node, target: old, bitmaps: [fresh] } });
      actions.push({ type: 'block-dirty-bitmap-enable', data: { node: disk.node, name: old } });
    }
    // Without an old one the next run reads in full anyway; new would only mislead it.
    actions.push({ type: 'block-dirty-bitmap-remove', data: { node: disk.node, name: fresh } });
  }
  if (actions.length) await qmp.execute('transaction', { actions });
}
