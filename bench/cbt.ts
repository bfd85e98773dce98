// Changed-block tracking benchmarks, on the cached corpus: an increment of
// the day-2 image (~300 scattered 64 KiB writes) with the exact extents list
// and with a QEMU dirty bitmap (qcow2 through qemu-nbd), beside restic
// backing up the day-2 image in the same run; and reading a whole NBD export
// with blockvault's client beside qemu-img convert into a null target.
// Run alone: node dist/bench/cbt.js
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { initDigests } from '../engine/core/digest.js';
import { NbdSource } from '../engine/nbd/nbd-source.js';
import { corpus, cacheDir, type Corpus } from './corpus.js';
import { duBytes, measure, median } from './measure.js';

const cli = new URL('../../dist/engine/cli/main.js', import.meta.url).pathname;
const work = join(cacheDir, 'work-cbt');

export interface CbtResult {
  extents: { seconds: number; bytesRead: number; bytesStored: number };
  bitmap: { seconds: number; bytesRead: number; bytesStored: number };
  restic: { seconds: number; storedBytes: number } | null;
  nbdRead: { blockvaultSeconds: number; qemuImgSeconds: number; dataBytes: number };
}

async function backup(args: string[]): Promise<{ seconds: number; json: Record<string, number> }> {
  const m = await measure(process.execPath, [cli, 'backup', ...args, '--json']);
  return { seconds: m.seconds, json: JSON.parse(m.stdout) };
}

async function serve(image: string, format: string, socket: string, bitmap?: string) {
  rmSync(socket, { force: true });
  const child = spawn('qemu-nbd', ['-r', '-t', '-e', '8', '-f', format, ...(bitmap ? ['-B', bitmap] : []), '--socket', socket, image], { stdio: 'ignore' });
  for (let i = 0; i < 400 && !existsSync(socket); i++) await new Promise((r) => setTimeout(r, 25));
  await new Promise((r) => setTimeout(r, 200));
  return child;
}

export async function runCbt(c: Corpus, runs = 3, withRestic = true): Promise<CbtResult> {
  await initDigests();
  rmSync(work, { recursive: true, force: true });
  mkdirSync(work, { recursive: true });
  const extentsFile = join(work, 'changed.json');
  writeFileSync(extentsFile, JSON.stringify(c.day2Extents));

  // 1. Exact changed-extents list on the raw day-2 image.
  const repo = join(work, 'repo');
  execFileSync(process.execPath, [cli, 'init', '-r', repo]);
  const base = (await backup(['-r', repo, '--vm', 'b', '--disk', 'sda', c.base])).json;
  const extentRuns = [];
  for (let i = 0; i < runs; i++) extentRuns.push(await backup(['-r', repo, '--vm', 'b', '--disk', 'sda', '--parent', String(base.id), '--changed', extentsFile, c.day2]));
  if (extentRuns[0].json.mode !== 'incremental' as unknown) throw new Error('expected an incremental backup');

  // 2. QEMU dirty bitmap: qcow2 of the base, bitmap added, the same guest writes through qemu-io.
  const qcow = join(work, 'vm.qcow2');
  execFileSync('qemu-img', ['convert', '-f', 'raw', '-O', 'qcow2', c.base, qcow]);
  const qrepo = join(work, 'qrepo');
  execFileSync(process.execPath, [cli, 'init', '-r', qrepo]);
  const qbase = (await backup(['-r', qrepo, '--vm', 'q', '--disk', 'sda', qcow])).json;
  execFileSync('qemu-img', ['bitmap', '--add', qcow, 'nightly']);
  const writes = c.day2Extents.flatMap((e) => ['-c', `write -P 0x5a ${e.start} ${e.length}`]);
  for (let i = 0; i < writes.length; i += 200) execFileSync('qemu-io', ['-f', 'qcow2', ...writes.slice(i, i + 200), qcow], { stdio: 'ignore' });
  const bitmapRuns = [];
  for (let i = 0; i < runs; i++) bitmapRuns.push(await backup(['-r', qrepo, '--vm', 'q', '--disk', 'sda', '--parent', String(qbase.id), '--bitmap', 'nightly', qcow]));

  // 3. restic backing up the day-2 image (its day-2 step), same run.
  let restic: CbtResult['restic'] = null;
  if (withRestic) {
    const rrepo = join(work, 'restic');
    const env = { RESTIC_REPOSITORY: rrepo, RESTIC_PASSWORD: 'bench', RESTIC_CACHE_DIR: join(work, 'restic-cache') };
    execFileSync('restic', ['init', '-q'], { env: { ...process.env, ...env } });
    await measure('restic', ['backup', '-q', '--stdin', '--stdin-filename', 'disk.raw'], { stdin: c.base, env });
    const before = duBytes(rrepo);
    const day2 = await measure('restic', ['backup', '-q', '--stdin', '--stdin-filename', 'disk.raw'], { stdin: c.day2, env });
    restic = { seconds: day2.seconds, storedBytes: duBytes(rrepo) - before };
  }

  // 4. Whole-export read: blockvault's NBD client vs qemu-img convert.
  const socket = join(work, 'read.sock');
  const server = await serve(c.base, 'raw', socket);
  const qemuTimes: number[] = [];
  const ourTimes: number[] = [];
  let dataBytes = await readWholeExport(socket); // untimed: both tools then read a warm page cache
  for (let i = 0; i < runs; i++) {
    const q = await measure('qemu-img', ['convert', '-n', '--target-image-opts', `nbd+unix:///?socket=${socket}`, `driver=null-co,size=${c.sizeBytes}`]);
    qemuTimes.push(q.seconds);
    const t = process.hrtime.bigint();
    dataBytes = await readWholeExport(socket);
    ourTimes.push(Number(process.hrtime.bigint() - t) / 1e9);
  }
  server.kill();
  rmSync(work, { recursive: true, force: true });
  const pick = (rs: Array<{ seconds: number; json: Record<string, number> }>) => ({ seconds: median(rs.map((r) => r.seconds)), bytesRead: rs[0].json.bytesRead, bytesStored: rs[0].json.bytesStored });
  return { extents: pick(extentRuns), bitmap: pick(bitmapRuns), restic, nbdRead: { blockvaultSeconds: median(ourTimes), qemuImgSeconds: median(qemuTimes), dataBytes } };
}

/** Reads every data extent of an export as a backup does: 4 MiB requests, 6 in flight. */
async function readWholeExport(socket: string): Promise<number> {
  const source = await NbdSource.open({ transport: 'unix', socket, exportName: '' });
  const pieces: Array<[number, number]> = [];
  for (const [start, end] of source.dataExtents ?? [[0, source.sizeBytes]]) {
    for (let at = start; at < end; at += 4 * 1024 * 1024) pieces.push([at, Math.min(end, at + 4 * 1024 * 1024)]);
  }
  const buffers = Array.from({ length: 6 }, () => Buffer.allocUnsafe(4 * 1024 * 1024));
  let next = 0;
  let bytes = 0;
  await Promise.all(buffers.map(async (buffer) => {
    while (next < pieces.length) {
      const [start, end] = pieces[next++];
      const n = await source.read(buffer.subarray(0, end - start), start);
      bytes += n;
    }
  }));
  await source.close();
  return bytes;
}

if (process.argv[1]?.endsWith('cbt.js')) {
  const c = corpus();
  const r = await runCbt(c);
  const mb = (b: number) => (b / 1e6).toFixed(1);
  process.stdout.write(`${JSON.stringify(r, null, 2)}\n`);
  if (r.restic) process.stdout.write(`increment (extents) ${r.extents.seconds}s, ${(r.restic.seconds / r.extents.seconds).toFixed(1)}x faster than restic (${r.restic.seconds}s); stored ${mb(r.extents.bytesStored)} MB vs restic ${mb(r.restic.storedBytes)} MB\n`);
  process.stdout.write(`NBD read: blockvault ${r.nbdRead.blockvaultSeconds.toFixed(2)}s vs qemu-img ${r.nbdRead.qemuImgSeconds.toFixed(2)}s = ${((100 * r.nbdRead.qemuImgSeconds) / r.nbdRead.blockvaultSeconds).toFixed(0)}% of qemu-img's rate\n`);
}
