// Paged chunk maps against a model (a plain map of chunk -> id), on a real
// repository: full builds, increments on top of them, streams of unknown
// size, and the pages an increment stores.
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chunkIdBytes, sha256 } from '../../../engine/core/digest.js';
import { mapPageEntries, mapShape } from '../../../engine/format/map-format.js';
import { PagedMap } from '../../../engine/repo/chunk-map.js';
import { MapBuilder } from '../../../engine/repo/map-builder.js';
import { storeMapPage } from '../../../engine/repo/map-pages.js';
import { PackWriter } from '../../../engine/repo/pack-writer.js';
import { Repository } from '../../../engine/repo/repository.js';
import { newRepo } from '../../helpers/repo.js';

type Model = Map<number, Buffer>;
const totals = [1, 700, 1024, 1025, 5000, 1024 * 1024 + 3, 2 * 1024 * 1024 + 1000];
const writesArb = fc.array(fc.record({ at: fc.nat(), length: fc.integer({ min: 1, max: 40 }), seed: fc.integer({ min: 0, max: 3 }) }), { maxLength: 12 });

let repo: Repository;
beforeAll(async () => {
  repo = await Repository.open(await newRepo(), { writer: { what: 'test', lockWaitSeconds: 5 } });
});
afterAll(async () => repo.close());

/** Applies writes to a model; returns the ascending, merged runs to put. Seed 0 writes zero ids (a chunk that became zero). */
function apply(model: Model, total: number, writes: Array<{ at: number; length: number; seed: number }>, tag: string): Array<[number, number]> {
  const touched = new Set<number>();
  for (const [k, w] of writes.entries()) {
    for (let c = w.at % total; c < Math.min(total, (w.at % total) + w.length); c++) {
      model.set(c, w.seed === 0 ? Buffer.alloc(32) : sha256(Buffer.from(`${tag}-${k}-${w.seed}-${c % 5}`)));
      touched.add(c);
    }
  }
  const runs: Array<[number, number]> = [];
  for (const c of [...touched].sort((a, b) => a - b)) {
    if (runs.length && runs[runs.length - 1][1] === c) runs[runs.length - 1][1] += 1;
    else runs.push([c, c + 1]);
  }
  return runs;
}

const idOf = (model: Model, c: number) => model.get(c) ?? Buffer.alloc(32);

async function build(total: number | null, base: PagedMap | null, model: Model, runs: Array<[number, number]>, chunks: number) {
  const writer = new PackWriter(repo.storage, repo.sessionId, repo.index, 1 << 20);
  const builder = new MapBuilder(total, base, async (page) => (await storeMapPage(repo.index, writer, (c) => writer.append(c), 1, page)).id);
  for (const [first, end] of runs) {
    await builder.put(first, Buffer.concat(Array.from({ length: end - first }, (_, k) => idOf(model, first + k))));
  }
  const built = await builder.finish(chunks);
  await writer.seal();
  return { built, map: new PagedMap(repo.points.pages, chunks, 65536, chunks * 65536, built.height, built.root, 'test') };
}

async function expectMatches(map: PagedMap, model: Model, total: number): Promise<void> {
  const probes = [...model.keys(), 0, total - 1, Math.floor(total / 2)];
  for (const c of probes) expect((await map.ids(c, 1)).equals(idOf(model, c)), `chunk ${c}`).toBe(true);
  const wantLeaves = new Set([...model.entries()].filter(([, id]) => id.some((b) => b !== 0)).map(([c]) => Math.floor(c / mapPageEntries)));
  const seen: number[] = [];
  for await (const leaf of map.leaves()) {
    seen.push(leaf.firstChunk / mapPageEntries);
    for (let k = 0; k < leaf.ids.length / chunkIdBytes; k++) {
      expect(leaf.ids.subarray(k * 32, k * 32 + 32).equals(idOf(model, leaf.firstChunk + k))).toBe(true);
    }
  }
  // A leaf of only zero ids is never stored; a height-0 map yields its root as one leaf when it holds data.
  expect(seen).toEqual([...wantLeaves].sort((a, b) => a - b));
}

describe('paged chunk maps', () => {
  it('read back what was built, and an increment stores only the pages on the paths it changed', async () => {
    await fc.assert(fc.asyncProperty(fc.constantFrom(...totals), writesArb, writesArb, writesArb, async (total, fullWrites, patchWrites, thirdWrites) => {
      const model: Model = new Map();
      const full = await build(total, null, model, apply(model, total, fullWrites, 'full'), total);
      await expectMatches(full.map, model, total);

      const runs = apply(model, total, patchWrites, 'patch');
      const next = await build(total, full.map, model, runs, total);
      await expectMatches(next.map, model, total);
      const leavesTouched = new Set(runs.flatMap(([a, b]) => [Math.floor(a / mapPageEntries), Math.floor((b - 1) / mapPageEntries)])).size;
      expect(next.built.pagesStored).toBeLessThanOrEqual(leavesTouched * Math.max(1, mapShape(total).height));

      // Putting the same ids again changes nothing and stores nothing.
      const again = await build(total, next.map, model, runs, total);
      expect(again.built.pagesStored).toBe(0);
      expect(again.built.root.equals(next.built.root)).toBe(true);

      // A third point over leaves that may be patches: patches rest on whole leaves only, and the walk names both.
      const third = await build(total, next.map, model, apply(model, total, thirdWrites, 'third'), total);
      await expectMatches(third.map, model, total);
      await expectPatchesRestOnWholeLeaves(third.map, total);
    }), { numRuns: 25 });
  });

  it('stores a leaf that changed in many entries whole, and one that changed in a few as a patch of ~36 bytes an entry', async () => {
    const total = 4096;
    const model: Model = new Map();
    const full = await build(total, null, model, apply(model, total, [{ at: 0, length: 4096, seed: 1 }], 'dense'), total);
    const scattered = Array.from({ length: 20 }, (_, k) => ({ at: 1024 + k * 37, length: 1, seed: 2 })); // 20 entries of leaf 1
    const dense = [{ at: 2048, length: 300, seed: 3 }]; // 300 entries of leaf 2: more than a quarter
    const next = await build(total, full.map, model, apply(model, total, [...scattered, ...dense], 'next'), total);
    await expectMatches(next.map, model, total);
    const kindOf = async (leaf: number) => {
      const view = (await next.map.pageWithId(0, leaf))!;
      return (await repo.points.pages.load(view.id, { point: 't', level: 0, index: leaf, firstByte: 0, endByte: 0 }))[5];
    };
    expect([await kindOf(0), await kindOf(1), await kindOf(2), await kindOf(3)]).toEqual([0, 4, 0, 0]);
    expect(next.built.pagesStored).toBe(2); // leaves 1 and 2; height 1, so the root holds the leaves' ids itself
  });
});

async function expectPatchesRestOnWholeLeaves(map: PagedMap, total: number): Promise<void> {
  const named = new Set<string>();
  for await (const leaf of map.leaves((id) => named.add(id.toString('hex')))) void leaf;
  for (let leaf = 0; leaf * mapPageEntries < total && map.height > 0; leaf++) {
    const view = await map.pageWithId(0, leaf);
    if (!view) continue;
    expect(named.has(view.id.toString('hex'))).toBe(true);
    expect(named.has(view.fullId.toString('hex'))).toBe(true);
    const base = await repo.points.pages.load(view.fullId, { point: 't', level: 0, index: leaf, firstByte: 0, endByte: 0 });
    expect(base[5]).toBe(0); // a whole leaf
  }
}

describe('paged chunk maps, streams', () => {

  it('a stream of unknown size gives the same map as the same disk of known size', async () => {
    await fc.assert(fc.asyncProperty(fc.constantFrom(...totals), writesArb, async (total, writes) => {
      const model: Model = new Map();
      apply(model, total, writes, 'stream');
      const all: Array<[number, number]> = [[0, total]];
      const known = await build(total, null, model, all, total);
      const stream = await build(null, null, model, all, total);
      expect(stream.built.root.equals(known.built.root)).toBe(true);
      expect([stream.built.height, stream.built.lastChunkZero]).toEqual([known.built.height, known.built.lastChunkZero]);
    }), { numRuns: 8 });
  });
});
