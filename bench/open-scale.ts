// Opening a large repository (`node dist/bench/open-scale.js [packs] [points] [--cold]`):
// a synthetic repository of 10,000 small packs (16 records each, written by
// the real pack writer, so with index objects every 64 packs) and 1,000
// restore points, opened by a whole `blockvault list` process:
//   warm: the LMDB cache is current (the common case);
//   rebuild from index objects: no cache (a new reader, a lost cache);
//   rebuild from trailers: no cache and `index rebuild --from-packs`, the
//   baseline every pack's trailer costs.
// --cold (as root) drops the page cache before each run. Medians of 3.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initDigests, sha256, xxh64 } from '../engine/core/digest.js';
import type { PointHeader } from '../engine/format/point-format.js';
import { PackWriter } from '../engine/repo/pack-writer.js';
import { initRepository, Repository } from '../engine/repo/repository.js';
import { median } from './measure.js';

const cli = join(new URL('../..', import.meta.url).pathname, 'dist', 'engine', 'cli', 'main.js');

export interface OpenScale { packs: number; points: number; cold: boolean; warmSeconds: number; fromIndexObjectsSeconds: number; fromTrailersSeconds: number; nodeSeconds: number }

export async function buildOpenScaleRepo(root: string, packs: number, points: number): Promise<void> {
  await initDigests();
  await initRepository(root);
  const repo = await Repository.open(root, { writer: { what: 'open-scale', lockWaitSeconds: 0 } });
  try {
    const writer = new PackWriter(repo.storage, repo.sessionId, repo.index, 1); // every append seals a pack
    const payload = Buffer.alloc(100, 7);
    let n = 0;
    for (let p = 0; p < packs; p++) {
      await writer.append(Array.from({ length: 16 }, () => ({ id: sha256(Buffer.from(`c${n++}`)), rawBytes: 100, storedBytes: 100, codec: 0 as const, storedXxh64: xxh64(payload), payload })));
    }
    await writer.flushIndex();
    for (let i = 0; i < points; i++) {
      const map = Buffer.concat(Array.from({ length: 16 }, (_, k) => sha256(Buffer.from(`c${(i * 16 + k) % n}`))));
      const header: PointHeader = {
        id: sha256(Buffer.from(`p${i}`)).toString('hex', 0, 16), vm: `vm${i % 50}`, disk: 'sda', time: new Date(1_700_000_000_000 + i * 60_000).toISOString(),
        sizeBytes: 16 * 65536, chunkBytes: 65536, chunksTotal: 16, parent: null, base: null, chainDepth: 0, mapSha256: sha256(map).toString('hex'), source: {}, stats: {},
      };
      await repo.points.write(header, { kind: 'paged', height: 0, root: map }, repo.sessionId); // 16 chunks: the root is the map
    }
  } finally {
    await repo.close();
  }
}

function wall(args: string[], cold: boolean, before?: () => void): number {
  before?.();
  if (cold) { execFileSync('sync'); writeFileSync('/proc/sys/vm/drop_caches', '3'); }
  const t = process.hrtime.bigint();
  const r = spawnSync(args[0], args.slice(1), { stdio: ['ignore', 'ignore', 'pipe'] });
  if (r.status !== 0) throw new Error(`${args.join(' ')}: ${r.stderr}`);
  return Number(process.hrtime.bigint() - t) / 1e9;
}

export async function runOpenScale(packs = 10_000, points = 1_000, cold = false, runs = 3): Promise<OpenScale> {
  const dir = mkdtempSync(join(tmpdir(), 'bv-open-'));
  const root = join(dir, 'repo');
  try {
    await buildOpenScaleRepo(root, packs, points);
    const node = process.execPath;
    const dropCache = () => rmSync(join(root, 'index'), { recursive: true, force: true });
    const series = (f: () => number) => median(Array.from({ length: runs }, f));
    return {
      packs, points, cold,
      nodeSeconds: series(() => wall([node, '-e', '0'], cold)),
      warmSeconds: series(() => wall([node, cli, 'list', '-r', root], cold)),
      fromIndexObjectsSeconds: series(() => wall([node, cli, 'list', '-r', root], cold, dropCache)),
      fromTrailersSeconds: series(() => wall([node, cli, 'index', 'rebuild', '--from-packs', '-r', root], cold, dropCache)),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export function openScaleTable(rs: OpenScale[]): string {
  return ['| open a repository of N packs, M restore points (whole `blockvault list` process) | wall s | vs from trailers |', '|---|---:|---:|',
    ...rs.flatMap((r) => {
      const tag = `${r.packs} packs, ${r.points} points, ${r.cold ? 'cold' : 'warm page cache'}`;
      return [
        `| ${tag}: node -e 0 | ${r.nodeSeconds.toFixed(3)} | |`,
        `| ${tag}: cache current | ${r.warmSeconds.toFixed(3)} | |`,
        `| ${tag}: no cache, from index objects | ${r.fromIndexObjectsSeconds.toFixed(3)} | ${(r.fromTrailersSeconds / r.fromIndexObjectsSeconds).toFixed(1)}x faster |`,
        `| ${tag}: no cache, from every pack trailer (index rebuild --from-packs) | ${r.fromTrailersSeconds.toFixed(3)} | 1.0x |`,
      ];
    })].join('\n');
}

if (process.argv[1]?.endsWith('open-scale.js')) {
  const [packs, points] = process.argv.slice(2).filter((a) => /^\d+$/.test(a)).map(Number);
  const results = [await runOpenScale(packs, points, false)];
  if (process.argv.includes('--cold')) results.push(await runOpenScale(packs, points, true));
  process.stdout.write(`${openScaleTable(results)}\n`);
}
