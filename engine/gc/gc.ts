// gc: reclaims the space no restore point needs, while backups keep running
// (docs/FORMAT.md "Garbage collection" has the argument in full):
//   1. finish any pending gc a previous run left (it stopped, or timed out waiting);
//   2. mark what every restore point references (mark.ts), plan (plan.ts);
//   3. copy the live records of mostly dead packs into new packs (repack.ts);
//   4. condemn: put gc/<id>.gc naming the packs to delete, then mark them in
//      the index, so no backup dedups against them from then on;
//   5. wait until every backup that was running at that moment has ended;
//   6. rescue: walk the points written since the mark, keep any condemned
//      pack they need (rescue.ts);
//   7. sweep: delete the rest (sweep.ts).
import { BlockvaultError } from '../core/errors.js';
import { killPoint } from '../core/test-hooks.js';
import type { PendingGc } from '../format/gc-format.js';
import { describeHolder, liveLocks } from '../repo/lock.js';
import { alignCondemned, listPendingGcs, putPendingGc } from '../repo/pending-gc.js';
import { quarantine, quarantineEntry } from '../repo/quarantine.js';
import type { Repository } from '../repo/repository.js';
import { buildMarkState, MarkState, markPoint } from './mark.js';
import { planGc, type GcPlan, type RepackPolicy } from './plan.js';
import { repackPacks } from './repack.js';
import { rescueCondemned } from './rescue.js';
import { sweep } from './sweep.js';

export type GcPhase = 'mark' | 'repack' | 'wait' | 'rescue' | 'sweep';
export interface GcOptions {
  dryRun?: boolean;
  /** Which partly live packs to repack (plan.ts). */
  repack: RepackPolicy;
  /** How long to wait for backups that were running when the packs were condemned. */
  sessionWaitSeconds: number;
  /** Dry runs only: mark as if these restore points were gone (prune --dry-run: what its forget would free). */
  withoutPoints?: ReadonlySet<string>;
  onProgress?: (phase: GcPhase, done: number, total: number) => void;
  say?: (line: string) => void;
}

export interface GcResult {
  dryRun: boolean;
  points: number;
  packsBefore: number;
  bytesBefore: number;
  plan: GcPlan;
  packsWritten: number;
  bytesWritten: number;
  packsDeleted: number;
  bytesDeleted: number;
  packsRescued: number;
  /** Pending gcs of earlier runs this one finished. */
  finishedEarlier: number;
  waitedForSessions: number;
  damagedRecords: Array<{ packId: string; offset: number; chunk: string }>;
  missingChunks: number;
  seconds: number;
}

/** The mark walks each page about once (a patch's base is the page read again): a small cache does. */
const gcPageCacheBytes = 2 * 1024 * 1024;

const emptyPlan = (): GcPlan => ({ drop: [], repack: [], packsKept: 0, bytesDropped: 0, bytesRepacked: 0, bytesToCopy: 0, bytesDeadKept: 0 });

export async function runGc(repo: Repository, options: GcOptions): Promise<GcResult> {
  const started = process.hrtime.bigint();
  const packs = repo.index.packEntries();
  const result: GcResult = {
    dryRun: options.dryRun === true, points: 0, packsBefore: packs.length, bytesBefore: packs.reduce((a, [, e]) => a + e.bytes, 0),
    plan: emptyPlan(), packsWritten: 0, bytesWritten: 0, packsDeleted: 0, bytesDeleted: 0, packsRescued: 0,
    finishedEarlier: 0, waitedForSessions: 0, damagedRecords: [], missingChunks: 0, seconds: 0,
  };
  const seconds = () => Number(process.hrtime.bigint() - started) / 1e9;
  if (!options.dryRun) {
    for (const g of await listPendingGcs(repo.storage, options.say ?? (() => undefined))) {
      await finish(repo, g, null, options, result);
      result.finishedEarlier += 1;
    }
  }
  // Every point file, hidden disks of a group still being written included.
  const points = repo.index.allPoints().filter((p) => !(options.dryRun && options.withoutPoints?.has(p.id)));
  const state = await buildMarkState(repo);
  repo.points.pages.locator = (id) => state.locate(id); // pages found through the table too: no index lookup in the mark
  repo.points.pages.limitCache(gcPageCacheBytes);
  try {
    for (const [k, entry] of points.entries()) {
      await markPoint(repo, entry, state);
      options.onProgress?.('mark', k + 1, points.length);
    }
  } finally {
    repo.points.pages.locator = null;
  }
  killPoint('gc-marked');
  result.points = points.length;
  result.missingChunks = state.missing;
  result.plan = planGc(state.packs, options.repack);
  const { drop, repack } = result.plan;
  if (options.dryRun || drop.length + repack.length === 0) return { ...result, seconds: seconds() };

  const copied = await repackPacks(repo, repack, state, (done) => options.onProgress?.('repack', done, repack.length));
  killPoint('gc-repacked');
  result.packsWritten = copied.packsWritten;
  result.bytesWritten = copied.bytesWritten;
  result.damagedRecords = copied.damaged;
  // A record found damaged while copying: quarantined, so the next backup of that data stores it afresh.
  await quarantine(repo.storage, repo.index, repo.sessionId, copied.damaged.map((d) => quarantineEntry(d.chunk, d.packId, d.offset, 'its payload checksum failed when gc copied it', [])));
  const pending: PendingGc = {
    id: repo.sessionId, started: new Date().toISOString(), marked: points.map((p) => p.id).sort(),
    condemned: [...drop, ...repack.filter((id) => !copied.keep.has(id))].sort(),
  };
  await putPendingGc(repo.storage, pending, repo.sessionId);
  killPoint('gc-pending-written');
  await finish(repo, pending, state, options, result);
  return { ...result, seconds: seconds() };
}

/** Steps 4 to 7 for one pending gc (this run's, or one a stopped run left: then state is null). */
async function finish(repo: Repository, g: PendingGc, state: MarkState | null, options: GcOptions, result: GcResult): Promise<void> {
  alignCondemned(repo.index, [g]);
  killPoint('gc-condemned');
  result.waitedForSessions += await waitForOlderSessions(repo, options);
  await repo.reconcile(); // catalog the points written meanwhile
  const { rescued } = await rescueCondemned(repo, new Set(g.marked), new Set(g.condemned), state);
  options.onProgress?.('rescue', 1, 1);
  if (rescued.size > 0) repo.index.setCondemned([...rescued], null);
  const doomed = g.condemned.filter((id) => !rescued.has(id));
  result.packsRescued += rescued.size;
  const swept = await sweep(repo, g.id, doomed, (done) => options.onProgress?.('sweep', done, doomed.length));
  result.packsDeleted += swept.packsDeleted;
  result.bytesDeleted += swept.bytesDeleted;
}

/**
 * Waits until no backup session that is live now is live any more. Any
 * session that could have found a condemned pack's chunk in the index
 * before the condemned marks were written is live now or has ended (its
 * point then written, and walked by the rescue).
 */
async function waitForOlderSessions(repo: Repository, options: GcOptions): Promise<number> {
  const sessions = async () => (await liveLocks(repo.storage, options.say)).filter((l) => l.kind === 'session' && l.id !== repo.sessionId);
  const older = await sessions();
  if (older.length === 0) return 0;
  const deadline = Date.now() + options.sessionWaitSeconds * 1000;
  const ids = new Set(older.map((l) => l.id));
  for (let delayMs = 100; ; delayMs = Math.min(2000, delayMs * 2)) {
    const still = (await sessions()).filter((l) => ids.has(l.id));
    options.onProgress?.('wait', older.length - still.length, older.length);
    if (still.length === 0) return older.length;
    if (Date.now() >= deadline) {
      const who = still.map((l) => (l.record ? describeHolder(l.record) : l.key)).join('; ');
      throw new BlockvaultError('REPO_LOCKED', `gc: waited ${options.sessionWaitSeconds}s for ${still.length === 1 ? 'a backup' : `${still.length} backups`} that started before it condemned packs: ${who}. Nothing was deleted; the next gc finishes this one (see --session-wait)`);
    }
    await new Promise((r) => setTimeout(r, delayMs));
  }
}
