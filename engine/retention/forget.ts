// forget: removes restore points (by name, or by a retention policy), and
// protect/unprotect. What forget removes is a unit a user restores: a
// single-disk restore point, or a VM restore point (group) with all its disks.
// It deletes point and group objects only: the chunks and map pages they
// named stay in the packs until gc (docs/FORMAT.md "Forget and protect"),
// and it cancels a pending gc first (docs/FORMAT.md "Garbage collection").
import { BlockvaultError, storageError } from '../core/errors.js';
import type { GroupEntry, PointEntry } from '../repo/chunk-index.js';
import { resolveGroup } from '../repo/group-store.js';
import { cancelPendingGcs } from '../repo/pending-gc.js';
import { groupPath, protectDir, protectPath } from '../repo/layout.js';
import type { Repository } from '../repo/repository.js';
import { applyRetention, timeZoneFormatter, type KeepRules } from './policy.js';

/** A unit of retention: one restore point, or a VM restore point and its disks. */
export interface Unit {
  kind: 'point' | 'group';
  id: string;
  vm: string;
  /** The unit's name as the CLI takes it: <vm>/<disk>@<id> or <vm>@<id>. */
  name: string;
  time: string;
  /** Retention applies per timeline: a disk's single-disk points, or a VM's group points. */
  timeline: string;
  points: PointEntry[];
}

export interface UnitDecision { unit: Unit; keep: boolean; reasons: string[] }

export function units(repo: Repository, vm?: string): Unit[] {
  const points = repo.points.list(vm);
  const groups = repo.index.allGroups().filter((g) => !vm || g.vm === vm);
  const out: Unit[] = points.filter((p) => !p.group).map((p) => ({
    kind: 'point', id: p.id, vm: p.vm, name: `${p.vm}/${p.disk}@${p.id}`, time: p.time, timeline: `${p.vm}/${p.disk}`, points: [p],
  }));
  for (const g of groups) {
    const members = g.disks.map((d) => points.find((p) => p.id === d.point)).filter((p): p is PointEntry => p !== undefined);
    out.push({ kind: 'group', id: g.id, vm: g.vm, name: `${g.vm}@${g.id}`, time: g.time, timeline: `${g.vm}@`, points: members });
  }
  return out;
}

export async function protectedIds(repo: Repository): Promise<Set<string>> {
  const keys = await repo.storage.listKeys(`${protectDir}/`);
  return new Set(keys.map((k) => /([0-9a-f]{32})\.json$/.exec(k)?.[1]).filter((id): id is string => id !== undefined));
}

/** The units `specs` name: <vm>/<disk>@<id> (a single-disk point) or <vm>@<id> (a VM restore point). */
export function resolveUnits(repo: Repository, specs: string[]): Unit[] {
  const all = units(repo);
  return specs.map((spec) => {
    if (!spec.includes('/')) {
      const group: GroupEntry = resolveGroup(repo.index, spec);
      return all.find((u) => u.kind === 'group' && u.id === group.id)!;
    }
    const point = repo.points.resolve(spec);
    if (point.group) {
      throw new BlockvaultError('USAGE', `${spec} is one disk of VM restore point ${point.vm}@${point.group.slice(0, 8)}: forgetting it alone would leave that restore point half deleted; name ${point.vm}@${point.group.slice(0, 8)} to forget all its disks`);
    }
    return all.find((u) => u.kind === 'point' && u.id === point.id)!;
  });
}

/** What a policy keeps and forgets, per timeline; protected units are kept whatever the rules say. */
export async function planPolicy(repo: Repository, rules: KeepRules, options: { vm?: string; tz?: string }): Promise<UnitDecision[]> {
  const formatter = timeZoneFormatter(options.tz);
  const guarded = await protectedIds(repo);
  const timelines = new Map<string, Unit[]>();
  for (const u of units(repo, options.vm)) timelines.set(u.timeline, [...(timelines.get(u.timeline) ?? []), u]);
  const out: UnitDecision[] = [];
  for (const list of timelines.values()) {
    const byId = new Map(list.map((u) => [u.id, u]));
    for (const d of applyRetention(list, rules, formatter)) {
      const reasons = guarded.has(d.id) ? [...d.reasons, 'protected'] : d.reasons;
      out.push({ unit: byId.get(d.id)!, keep: reasons.length > 0, reasons });
    }
  }
  return out.sort((a, b) => a.unit.timeline.localeCompare(b.unit.timeline) || b.unit.time.localeCompare(a.unit.time));
}

/**
 * Removes units. A group's object goes first: from then on its disks are no
 * restore point (PointStore.list hides them), and a crash before their files
 * go leaves only unreferenced objects, which the next forget removes
 * (forgetOrphans) and gc would reclaim.
 */
export async function forgetUnits(repo: Repository, list: Unit[]): Promise<void> {
  await refuseProtected(repo, list);
  await refuseDeltaBases(repo, list);
  // A pending gc may only sweep once every point written since its mark has been walked; forgetting one could hide what it needs.
  if (list.length > 0) await cancelPendingGcs(repo.storage, repo.index, (line) => process.stderr.write(`${line}\n`));
  for (const u of list) {
    if (u.kind === 'group') {
      await remove(repo, groupPath(u.vm, u.id));
      repo.index.removeGroup(u.id);
    }
    for (const p of u.points) await remove(repo, p.path);
    repo.index.removePoints(u.points.map((p) => p.id));
  }
}

/** Forgetting a protected point by name is refused, with nothing forgotten. */
export async function refuseProtected(repo: Repository, list: Unit[]): Promise<void> {
  const guarded = await protectedIds(repo);
  const refused = list.filter((u) => guarded.has(u.id));
  if (refused.length > 0) {
    throw new BlockvaultError('USAGE', `${refused.map((u) => u.name).join(', ')} ${refused.length === 1 ? 'is' : 'are'} protected; nothing was forgotten (blockvault unprotect first)`);
  }
}

/**
 * A version-1 delta map (left by an upgrade that could not page it) reads its
 * base's map: forgetting that base would leave it unreadable, so it is refused
 * by name. Paged points stand alone and never need this.
 */
async function refuseDeltaBases(repo: Repository, list: Unit[]): Promise<void> {
  const going = new Set(list.flatMap((u) => u.points.map((p) => p.id)));
  for (const entry of repo.index.allPoints()) {
    if (entry.kind !== 'delta' || going.has(entry.id)) continue;
    const { header } = await repo.points.readFile(entry.path);
    if (header.base && going.has(header.base)) {
      throw new BlockvaultError('USAGE', `restore point ${entry.vm}/${entry.disk}@${entry.id} is a version-1 delta of ${header.base}: forgetting its base would leave it unreadable; nothing was forgotten (run blockvault upgrade, or forget both)`);
    }
  }
}

async function remove(repo: Repository, key: string): Promise<void> {
  try {
    await repo.storage.delete(key);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return; // a forget that stopped half way, run again
    throw storageError(err, key);
  }
}

/** Disks of a group whose group object is gone (a forget that stopped, or a group backup that died) and older than a day. */
export async function forgetOrphans(repo: Repository, now = Date.now()): Promise<number> {
  const orphans = repo.index.allPoints().filter((p) => p.group && !repo.index.hasGroup(p.group) && now - Date.parse(p.time) > 86_400_000);
  if (orphans.length > 0) await cancelPendingGcs(repo.storage, repo.index, (line) => process.stderr.write(`${line}\n`));
  for (const p of orphans) await remove(repo, p.path);
  repo.index.removePoints(orphans.map((p) => p.id));
  return orphans.length;
}

export async function setProtected(repo: Repository, list: Unit[], on: boolean): Promise<void> {
  for (const u of list) {
    const key = protectPath(u.vm, u.id);
    if (on) {
      const body = Buffer.from(`${JSON.stringify({ id: u.id, name: u.name, protectedAt: new Date().toISOString() })}\n`);
      await repo.storage.put(key, body, repo.sessionId).catch((err) => { throw storageError(err, key); });
    } else {
      await remove(repo, key);
    }
  }
}
