// Before a pending gc sweeps: every restore point its mark did not cover
// (written since, by backups that ran meanwhile) is walked, and a condemned
// pack such a point needs is rescued: kept, and no longer condemned. With
// the wait for older sessions (gc.ts), this is what makes the sweep safe
// (docs/FORMAT.md "Garbage collection").
import { BlockvaultError } from '../core/errors.js';
import type { Repository } from '../repo/repository.js';
import type { MarkState } from './mark.js';

/**
 * The condemned packs that points outside `marked` reference. `state`, when
 * this run made the mark: pages it marked are known live all the way down
 * and are not read again.
 */
export async function rescueCondemned(repo: Repository, marked: ReadonlySet<string>, condemned: ReadonlySet<string>, state: MarkState | null): Promise<{ rescued: Set<string>; pointsWalked: number }> {
  const rescued = new Set<string>();
  const pagesWalked = new Set<string>();
  let pointsWalked = 0;
  const visit = (id: Buffer, kind: 'page' | 'chunk' | 'base'): boolean => {
    const at = repo.index.lookup(id);
    if (!at) {
      if (kind !== 'chunk') throw new BlockvaultError('CHUNK_MISSING', `map page ${id.toString('hex')} is in no pack`);
      return false;
    }
    if (condemned.has(at.packId)) rescued.add(at.packId);
    if (kind === 'chunk') return false;
    // A page the mark walked whole names only live chunks; one walked here already was checked.
    const hex = id.toString('hex');
    const done = state?.isWalked(at.packId, at.ordinal) === true || pagesWalked.has(hex);
    if (kind === 'base') return done;
    pagesWalked.add(hex);
    return !done;
  };
  for (const entry of repo.index.allPoints()) {
    if (marked.has(entry.id)) continue;
    pointsWalked += 1;
    try {
      const { map } = await repo.points.open(entry);
      await map.walk(visit);
    } catch (err) {
      if (!(err instanceof BlockvaultError)) throw err;
      if (err.code === 'POINT_NOT_FOUND') continue;
      throw new BlockvaultError(err.code, `gc kept every condemned pack: restore point ${entry.vm}/${entry.disk}@${entry.id} written during the gc cannot be walked: ${err.message}`, { cause: err });
    }
  }
  return { rescued, pointsWalked };
}
