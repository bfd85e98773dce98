// Content-defined chunking end to end: two VMs installed apart dedup, an
// increment re-chunks only what changed and comes out as a full re-read
// would, a shifted stream dedups with FastCDC, and bad input is refused by
// name with nothing written (a forged variable-length map included).
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { initDigests, sha256 } from '../../engine/core/digest.js';
import { cdcLeafBytes } from '../../engine/format/map-format.js';
import { decodePoint, type PointHeader } from '../../engine/format/point-format.js';
import { storeMapPage } from '../../engine/repo/map-pages.js';
import { PackWriter } from '../../engine/repo/pack-writer.js';
import { Repository } from '../../engine/repo/repository.js';
import { makeVmDisk, randomStream, scatterWrites, sha256File, type DiskInfo } from '../../scripts/vm-disk.js';
import { cli, cliJson } from '../helpers/cli.js';
import { tempDir } from '../helpers/temp.js';

const MiB = 1024 * 1024;
interface Backup { id: string; mode: string; reason: string; bytesRead: number; bytesNew: number; bytesStored: number; chunksTotal: number; mapKind: string }

/** The header of a restore point, from its file. */
function pointHeader(root: string, vm: string, disk: string, id: string): PointHeader {
  return decodePoint(readFileSync(join(root, 'points', vm, disk, `${id}.point`)), 'test').header;
}

function repoFiles(root: string): string[] {
  const out: string[] = [];
  const walk = (d: string, rel: string) => {
    for (const name of readdirSync(d, { withFileTypes: true })) {
      if (name.name === 'index' || name.name === 'locks' || name.name === 'tmp') continue;
      if (name.isDirectory()) walk(join(d, name.name), `${rel}${name.name}/`);
      else out.push(`${rel}${name.name}`);
    }
  };
  walk(root, '');
  return out.sort();
}

describe('content-defined chunking (aligned-cdc)', () => {
  const dir = tempDir();
  const cdc = join(dir, 'cdc');
  const fixed = join(dir, 'fixed');
  let a: DiskInfo;
  let b: DiskInfo;

  beforeAll(async () => {
    // Two VMs installed apart: the same files (and some others in B), each ext4 made afresh, so the files lie at other offsets.
    const spec = { sizeBytes: 192 * MiB, systemBytes: 32 * MiB, randomBytes: 4 * MiB, seed: 'cdc', ext4BlockBytes: 4096 };
    a = makeVmDisk({ ...spec, path: join(dir, 'a.raw') });
    b = makeVmDisk({ ...spec, path: join(dir, 'b.raw'), otherFiles: { bytes: 4 * MiB, seed: 'b' } });
    await initDigests();
    await cli(['init', '-r', cdc, '--chunker', 'aligned-cdc', '--pack-size', '8M']);
    await cli(['init', '-r', fixed, '--pack-size', '8M']);
  }, 120_000);

  it('dedups a second VM whose files lie at other offsets, where fixed chunks do not', async () => {
    const stored: Record<string, number> = {};
    for (const root of [cdc, fixed]) {
      const first = await cliJson<Backup>(['backup', '-r', root, '--vm', 'a', '--disk', 'sda', a.path]);
      const second = await cliJson<Backup>(['backup', '-r', root, '--vm', 'b', '--disk', 'sda', b.path]);
      expect(first.mapKind).toBe(root === cdc ? 'cdc' : 'paged');
      stored[root] = second.bytesStored;
    }
    expect(stored[cdc]).toBeLessThan(0.75 * stored[fixed]);
    for (const [vm, disk] of [['a', a], ['b', b]] as const) {
      const out = join(dir, `${vm}.out`);
      expect((await cli(['restore', '-r', cdc, `${vm}/sda@latest`, out])).code).toBe(0);
      expect(sha256File(out)).toBe(sha256File(disk.path));
    }
    expect((await cliJson<{ ok: boolean }>(['verify', '-r', cdc])).ok).toBe(true);
    const check = await cli(['check', '-r', cdc, '--read-data']);
    expect(check.code, check.stdout).toBe(0);
  });

  it('an increment re-chunks only the changed regions and equals a full re-read of the disk', async () => {
    const extents = scatterWrites(a, 40, 8192, 'cdc-day2');
    const changed = join(dir, 'changed.json');
    writeFileSync(changed, JSON.stringify(extents));
    const inc = await cliJson<Backup>(['backup', '-r', cdc, '--vm', 'a', '--disk', 'sda', '--changed', changed, '--cbt-check', '100', a.path]);
    expect(inc.mode, inc.reason).toBe('incremental');
    expect(inc.bytesRead).toBeLessThan(extents.length * 3 * 256 * 1024);
    const full = await cliJson<Backup>(['backup', '-r', cdc, '--vm', 'a', '--disk', 'sda2', a.path]);
    expect(full.mode).toBe('full');
    // The same cuts, the same chunks, the same map: the root of the tree is the same.
    expect(pointHeader(cdc, 'a', 'sda', inc.id).mapSha256).toBe(pointHeader(cdc, 'a', 'sda2', full.id).mapSha256);
    expect(inc.chunksTotal).toBe(full.chunksTotal);
    const out = join(dir, 'day2.out');
    await cli(['restore', '-r', cdc, 'a/sda@latest', out]);
    expect(sha256File(out)).toBe(sha256File(a.path));
  });

  it('an increment whose parent was cut by another chunker reads the whole disk, and says why', async () => {
    const first = await cliJson<Backup>(['backup', '-r', cdc, '--vm', 'c', '--disk', 'sda', '--chunker', 'cdc', a.path]);
    expect(pointHeader(cdc, 'c', 'sda', first.id).chunker?.kind).toBe('cdc');
    writeFileSync(join(dir, 'none.json'), '[]');
    const next = await cliJson<Backup>(['backup', '-r', cdc, '--vm', 'c', '--disk', 'sda', '--changed', join(dir, 'none.json'), a.path]);
    expect(next.mode).toBe('full');
    expect(next.reason).toMatch(/parent [0-9a-f]{8} was cut by cdc \(min 16 KiB, average 64 KiB, max 256 KiB\), this backup cuts aligned-cdc .*: full read/);
    expect(next.bytesNew).toBe(0); // a full read still dedups (against a's chunks)
    // A VM of several disks takes --chunker too: every disk of it is cut alike.
    const group = await cliJson<{ disks: Backup[] }>(['backup', '-r', cdc, '--vm', 'g', '--disk', `sda=${a.path}`, '--disk', `sdb=${b.path}`, '--chunker', 'cdc']);
    expect(group.disks).toHaveLength(2);
    for (const d of group.disks) expect(pointHeader(cdc, 'g', (d as unknown as { disk: string }).disk, d.id).chunker?.kind).toBe('cdc');
  });

  it('without the native addon: says so once, and cuts exactly where the native scanners cut', async () => {
    const native = await cliJson<Backup>(['backup', '-r', cdc, '--vm', 'n', '--disk', 'native', b.path]);
    const r = await cli(['backup', '-r', cdc, '--vm', 'n', '--disk', 'ts', b.path, '--json'], { env: { BLOCKVAULT_TEST_NO_NATIVE: '1', BLOCKVAULT_QUIET_NATIVE: '' } });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr.match(/native addon disabled/g)).toHaveLength(1);
    expect(r.stderr).toMatch(/chunk boundaries found by the slower TypeScript scanners/);
    const ts = JSON.parse(r.stdout) as Backup;
    expect(pointHeader(cdc, 'n', 'ts', ts.id).mapSha256).toBe(pointHeader(cdc, 'n', 'native', native.id).mapSha256);
    expect(ts.bytesNew).toBe(0);
  });

  it('FastCDC: a stream shifted by 512 bytes dedups against the unshifted one', async () => {
    const data = Buffer.concat([randomStream('stream')(6 * MiB), readFileSync(process.execPath).subarray(0, 6 * MiB)]);
    const one = await cliJson<Backup>(['backup', '-r', cdc, '--vm', 'ova', '--disk', 'x', '--chunker', 'cdc', '-'], { stdin: data });
    const shifted = await cliJson<Backup>(['backup', '-r', cdc, '--vm', 'ova', '--disk', 'y', '--chunker', 'cdc', '-'], { stdin: Buffer.concat([randomStream('hdr')(512), data]) });
    expect(one.bytesNew).toBeGreaterThan(10 * MiB);
    expect(1 - shifted.bytesNew / one.bytesNew).toBeGreaterThan(0.9);
    const out = join(dir, 'y.out');
    await cli(['restore', '-r', cdc, 'ova/y@latest', out]);
    expect(sha256(readFileSync(out)).equals(sha256(Buffer.concat([randomStream('hdr')(512), data])))).toBe(true);
  });

  it('refuses chunkers and sizes that do not exist or contradict each other, writing nothing', async () => {
    const cases: Array<[string[], number, RegExp]> = [
      [['--chunker', 'rabin'], 1, /--chunker "rabin": expected one of fixed, aligned-cdc, cdc \[USAGE\]/],
      [['--chunker', 'aligned-cdc', '--chunk-size', '48K'], 1, /--chunk-size \(the average\) 48K.*must be multiples of 4096 bytes, the average a power of two/],
      [['--chunker', 'aligned-cdc', '--chunk-max', '32K'], 1, /min 16384, average 65536, max 32768: need 4096 <= min < average < max/],
      [['--chunker', 'cdc', '--chunk-min', '1K'], 1, /the smallest chunk, 1024 bytes, is below 4096 bytes/],
      [['--chunk-min', '16K'], 1, /--chunk-min applies to content-defined chunkers only/],
    ];
    for (const [args, code, message] of cases) {
      const root = join(dir, 'bad');
      const r = await cli(['init', '-r', root, ...args]);
      expect(r.code, args.join(' ')).toBe(code);
      expect(r.stderr, args.join(' ')).toMatch(message);
      expect(existsSync(join(root, 'config')), args.join(' ')).toBe(false);
    }
    const before = repoFiles(fixed);
    const mixed = await cli(['backup', '-r', fixed, '--vm', 'a', '--disk', 'sda', '--chunker', 'aligned-cdc', a.path]);
    expect(mixed.code).toBe(1);
    expect(mixed.stderr).toMatch(/--chunker aligned-cdc: this repository cuts fixed-size chunks; fixed and content-defined chunks do not mix/);
    expect(repoFiles(fixed)).toEqual(before);
  });

  it('a corrupted variable-length map is refused by name: offsets out of order, past the disk end', async () => {
    await initDigests();
    const forged = async (lengths: number[], sizeBytes: number): Promise<string> => {
      // A leaf whose checksums are all good but whose chunks do not fit the disk: as a buggy or hostile writer would leave it.
      const leaf = Buffer.alloc(16 + lengths.length * 36);
      leaf.write('BVMP', 0, 'latin1');
      leaf[4] = 1;
      leaf[5] = 2;
      leaf.writeUInt32LE(lengths.length, 8);
      lengths.forEach((n, k) => { leaf.writeUInt32LE(n, 16 + 4 * k); leaf.fill(k + 1, 16 + 4 * lengths.length + 32 * k, 16 + 4 * lengths.length + 32 * (k + 1)); });
      const repo = await Repository.open(cdc, { writer: { what: 'forge', lockWaitSeconds: 5 } });
      try {
        const writer = new PackWriter(repo.storage, repo.sessionId, repo.index, repo.config.packBytesTarget);
        const page = await storeMapPage(repo.index, writer, (chunks) => writer.append(chunks), 1, leaf);
        await writer.seal();
        await writer.flushIndex();
        const id = sha256(Buffer.from(`forged ${lengths.join(',')}`)).toString('hex').slice(0, 32);
        const header: PointHeader = {
          id, vm: 'forged', disk: 'sda', time: new Date().toISOString(), sizeBytes, chunkBytes: 262144, chunksTotal: lengths.length,
          parent: null, base: null, chainDepth: 0, mapSha256: sha256(page.id).toString('hex'), source: {}, stats: {},
          chunker: { kind: 'aligned-cdc', minBytes: 16384, avgBytes: 65536, maxBytes: 262144 }, leafBytes: cdcLeafBytes,
        };
        await repo.points.write(header, { kind: 'cdc', height: 1, root: page.id }, repo.sessionId);
        return id;
      } finally {
        await repo.close();
      }
    };
    const past = await forged([200000, 200000], 300000);
    const verify = await cli(['verify', '-r', cdc, `forged/sda@${past}`]);
    expect(verify.code).toBe(2);
    expect(verify.stdout + verify.stderr).toMatch(/forged\/sda@[0-9a-f]+: map page [0-9a-f]+ \(level 0, page 0, disk bytes 0-300000\): its chunks end at offset 400000; the disk is 300000 bytes/);
    const target = join(dir, 'forged.out');
    const restore = await cli(['restore', '-r', cdc, `forged/sda@${past}`, target]);
    expect(restore.code).toBe(2);
    expect(restore.stderr).toMatch(/its chunks end at offset 400000/);
    expect(existsSync(target)).toBe(false);
    const zero = await forged([150000, 0, 150000], 300000);
    const refused = await cli(['restore', '-r', cdc, `forged/sda@${zero}`, target]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/chunk 1 at offset 150000 has length 0 \(1 to 262144\)/);
    expect(existsSync(target)).toBe(false);
  });
});

