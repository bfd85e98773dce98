// libvirt checkpoints as blockvault uses them (docs/FORMAT.md "VM backups
// over libvirt"): each committed point records the checkpoint its backup
// created (`checkpoint` in its source). Deleting a checkpoint makes libvirt
// merge its bitmap into its parent's, so settling is one rule: keep the
// parent's checkpoint, delete every other blockvault checkpoint.
import type { Virsh } from './virsh.js';

export const checkpointPrefix = 'blockvault-';

export function newCheckpointName(now = Date.now()): string {
  return `${checkpointPrefix}${now.toString(36)}-${process.pid.toString(36)}`;
}

export async function listCheckpoints(virsh: Virsh, domain: string): Promise<string[]> {
  const out = await virsh.run(['checkpoint-list', domain, '--name', '--topological']); // parents before children
  return out.split('\n').map((l) => l.trim()).filter((l) => l.startsWith(checkpointPrefix));
}

export async function deleteCheckpoint(virsh: Virsh, domain: string, name: string): Promise<void> {
  await virsh.run(['checkpoint-delete', domain, name]);
}

/** The parent's checkpoint if it is still there (the others deleted: merged into it), else null with why. */
export async function settleCheckpoints(virsh: Virsh, domain: string, expected: string | null): Promise<{ old: string | null; problem?: string; removed: string[] }> {
  const ours = await listCheckpoints(virsh, domain);
  const keep = expected && ours.includes(expected) ? expected : null;
  // Newest first: deleting a leaf folds its bitmap into its parent, so nothing is lost on the way.
  const removed = ours.filter((c) => c !== keep).reverse();
  for (const c of removed) await deleteCheckpoint(virsh, domain, c);
  if (keep) return { old: keep, removed };
  return { old: null, removed, problem: expected ? `checkpoint ${expected} of the parent is gone from domain ${domain}` : 'no earlier restore point of this disk taken over libvirt' };
}
