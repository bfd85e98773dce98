// Group objects: a VM restore point of several disks (docs/FORMAT.md "Group
// objects"). The group's disks are restore points of their own, each naming
// the group; the group object is put after all of them, so until it exists
// none of them is a restore point (PointStore.list leaves them out).
import { BlockvaultError, storageError } from '../core/errors.js';
import { decodeGroup, encodeGroup, groupBytesMax, type GroupHeader } from '../format/group-format.js';
import type { ObjectStore } from '../storage/storage.js';
import type { ChunkIndex, GroupEntry } from './chunk-index.js';
import { groupPath, groupsDir } from './layout.js';

export async function writeGroup(store: ObjectStore, index: ChunkIndex, group: GroupHeader, sessionId: string): Promise<void> {
  const key = groupPath(group.vm, group.id);
  await store.put(key, encodeGroup(group), sessionId).catch((err) => { throw storageError(err, `group ${key}`); });
  index.addGroup(group);
}

/** Catalogs group objects the index does not know; a damaged one is named (its disks stay hidden). */
export async function reconcileGroups(store: ObjectStore, index: ChunkIndex, say: (line: string) => void): Promise<number> {
  let added = 0;
  const keys = await store.listKeys(`${groupsDir}/`);
  const present = new Set(keys.map((key) => /([0-9a-f]{32})\.group$/.exec(key)?.[1]));
  for (const g of index.allGroups()) if (!present.has(g.id)) index.removeGroup(g.id); // forgotten by another process
  for (const key of keys) {
    const m = /^groups\/[^/]+\/([0-9a-f]{32})\.group$/.exec(key);
    if (!m || index.hasGroup(m[1])) continue;
    try {
      index.addGroup(decodeGroup(await store.get(key, groupBytesMax), key));
      added += 1;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
      if (!(err instanceof BlockvaultError)) throw storageError(err, `group ${key}`);
      say(`blockvault: ${err.message}; its disks are not shown as a restore point`);
    }
  }
  return added;
}

/** Resolves "<vm>@<id prefix>" or "<vm>@latest" to a group. */
export function resolveGroup(index: ChunkIndex, spec: string): GroupEntry {
  const m = /^([^/@]+)@([0-9a-f]+|latest)$/.exec(spec);
  if (!m) throw new BlockvaultError('USAGE', `VM restore point ${JSON.stringify(spec)}: expected <vm>@<id> or <vm>@latest`);
  const [, vm, ref] = m;
  const groups = index.allGroups().filter((g) => g.vm === vm).sort((a, b) => (a.time === b.time ? b.id.localeCompare(a.id) : b.time.localeCompare(a.time)));
  if (groups.length === 0) throw new BlockvaultError('POINT_NOT_FOUND', `no VM restore points (backups of several disks) for ${vm}`);
  if (ref === 'latest') return groups[0];
  const found = groups.filter((g) => g.id.startsWith(ref));
  if (found.length === 0) throw new BlockvaultError('POINT_NOT_FOUND', `no VM restore point ${vm}@${ref}`);
  if (found.length > 1) throw new BlockvaultError('POINT_AMBIGUOUS', `${vm}@${ref} matches ${found.length} VM restore points; give more of the id`);
  return found[0];
}

/** The group object itself (the index keeps its disks, not its machine description). */
export async function readGroup(store: ObjectStore, vm: string, id: string): Promise<GroupHeader> {
  const key = groupPath(vm, id);
  const bytes = await store.get(key, groupBytesMax).catch((err) => { throw (err as NodeJS.ErrnoException).code === 'ENOENT' ? new BlockvaultError('POINT_NOT_FOUND', `VM restore point ${vm}@${id}: its group object ${key} is gone`) : storageError(err, `group ${key}`); });
  return decodeGroup(bytes, key);
}
