// Content-defined chunking against fixed chunks and restic, side by side in
// one run, whole-process wall time cold (page cache dropped before every
// command) and warm: bytes stored and time for the full backup of a VM, its
// day-2 increment (blockvault: the exact changed-extents list; restic: a
// re-read of the whole image) and a second VM holding mostly the same files
// at other offsets (bench/corpus.ts secondVm); then a FastCDC stream shifted
// by 512 bytes, the scanners native against TypeScript, and random 4 KiB
// reads through the mount on fixed and on CDC points.
// Run: node dist/bench/cdc.js [--rounds 3] [--corpus vm4g,mix6g] [--warm]
import { execFileSync } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readdirSync, readSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { tsScanner, type ChunkerSpec } from '../engine/chunking/chunker.js';
import { makeScanner } from '../engine/chunking/scanner.js';
import { nativeApi } from '../engine/core/native.js';
import { cacheDir, corpus, corpusMixed, secondVm, type Corpus } from './corpus.js';
import { dropCaches, run } from './cold.js';
import { duBytes, median } from './measure.js';
import { dataOffsets, startMount, stopMount } from './mount.js';

const top = new URL('../..', import.meta.url).pathname;
const cli = join(top, 'dist', 'engine', 'cli', 'main.js');
const bv = `${process.execPath} ${cli}`;

/** The chunkers compared: fixed 64 KiB (today's default) and aligned CDC at two averages. */
export const configs: Array<{ name: string; init: string }> = [
  { name: 'fixed 64 KiB', init: '' },
  { name: 'aligned-cdc 16/64/256 KiB', init: '--chunker aligned-cdc --chunk-size 64K' },
  { name: 'aligned-cdc 8/32/128 KiB', init: '--chunker aligned-cdc --chunk-size 32K' },
];
const steps = ['full backup', 'day-2 increment', 'second VM'] as const;
type Step = (typeof steps)[number];

export interface StepResult { seconds: number[]; storedBytes: number; readBytes: number | null }
export interface CdcReport {
  corpus: string; cold: boolean; rounds: number;
  rows: Record<string, Record<Step, StepResult>>;
  shift: { newBytes: number; shiftedNewBytes: number; streamBytes: number } | null;
}

/** One blockvault round for one chunker: a fresh repository, then the three steps. */
function blockvaultRound(c: Corpus, b: string, work: string, init: string, cold: boolean): Record<Step, { seconds: number; stored: number; read: number }> {
  const repo = join(work, 'repo');
  rmSync(repo, { recursive: true, force: true });
  execFileSync('bash', ['-c', `${bv} init -r ${repo} ${init}`]);
  const extents = join(work, 'changed.json');
  writeFileSync(extents, JSON.stringify(c.day2Extents));
  const out = join(work, 'out.json');
  const step = (line: string) => {
    const t = run(`${line} --json > ${out}`, cold);
    const r = JSON.parse(execFileSync('cat', [out], { encoding: 'utf8' })) as { bytesStored: number; bytesRead: number };
    return { seconds: t.seconds, stored: r.bytesStored, read: r.bytesRead };
  };
  const result = {
    'full backup': step(`${bv} backup -r ${repo} --vm a --disk sda ${c.base}`),
    'day-2 increment': step(`${bv} backup -r ${repo} --vm a --disk sda --changed ${extents} ${c.day2}`),
    'second VM': step(`${bv} backup -r ${repo} --vm b --disk sda ${b}`),
  };
  rmSync(repo, { recursive: true, force: true });
  return result;
}

function resticRound(c: Corpus, b: string, work: string, cold: boolean): Record<Step, { seconds: number; stored: number; read: number }> {
  const env = { RESTIC_REPOSITORY: join(work, 'restic'), RESTIC_PASSWORD: 'bench', RESTIC_CACHE_DIR: join(work, 'restic-cache') };
  rmSync(env.RESTIC_REPOSITORY, { recursive: true, force: true });
  execFileSync('restic', ['init', '-q'], { env: { ...process.env, ...env } });
  const step = (image: string, host: string) => {
    const before = duBytes(env.RESTIC_REPOSITORY);
    const t = run(`restic backup -q --host ${host} --stdin --stdin-filename disk.raw < ${image}`, cold, env);
    return { seconds: t.seconds, stored: duBytes(env.RESTIC_REPOSITORY) - before, read: c.sizeBytes };
  };
  const result = { 'full backup': step(c.base, 'a'), 'day-2 increment': step(c.day2, 'a'), 'second VM': step(b, 'b') };
  rmSync(env.RESTIC_REPOSITORY, { recursive: true, force: true });
  return result;
}

/** FastCDC on a stream: the first GiB of the image, then the same after a 512-byte header. */
function shiftedStream(c: Corpus, work: string): CdcReport['shift'] {
  const repo = join(work, 'shift');
  rmSync(repo, { recursive: true, force: true });
  execFileSync('bash', ['-c', `${bv} init -r ${repo} --chunker cdc`]);
  const header = join(work, 'header.bin');
  writeFileSync(header, randomBytes(512));
  const json = (line: string) => JSON.parse(execFileSync('bash', ['-o', 'pipefail', '-c', line], { encoding: 'utf8', maxBuffer: 1 << 20 })) as { bytesNew: number; bytesTotal: number };
  const one = json(`head -c 1G ${c.base} | ${bv} backup -r ${repo} --vm s --disk x - --json`);
  const two = json(`(cat ${header}; head -c 1G ${c.base}) | ${bv} backup -r ${repo} --vm s --disk y - --json`);
  rmSync(repo, { recursive: true, force: true });
  return { newBytes: one.bytesNew, shiftedNewBytes: two.bytesNew, streamBytes: one.bytesTotal };
}

export function runCdc(c: Corpus, cold: boolean, rounds: number): CdcReport {
  const work = join(cacheDir, `cdc-${c.name}`);
  mkdirSync(work, { recursive: true });
  const b = secondVm(c);
  const all: Record<string, Array<Record<Step, { seconds: number; stored: number; read: number }>>> = {};
  for (let r = 0; r < rounds; r++) {
    // Interleaved: every chunker (and restic, in the first round) in every round.
    for (const config of configs) (all[config.name] ??= []).push(blockvaultRound(c, b, work, config.init, cold));
    if (r === 0) (all.restic ??= []).push(resticRound(c, b, work, cold));
  }
  const rows: CdcReport['rows'] = {};
  for (const [name, runs] of Object.entries(all)) {
    rows[name] = Object.fromEntries(steps.map((s) => [s, { seconds: runs.map((x) => x[s].seconds), storedBytes: runs[0][s].stored, readBytes: name === 'restic' ? null : runs[0][s].read }])) as Record<Step, StepResult>;
  }
  return { corpus: c.name, cold, rounds, rows, shift: cold ? null : shiftedStream(c, work) };
}

const mb = (n: number) => (n / 1e6).toFixed(1);

export function cdcTable(r: CdcReport): string {
  const fixed = r.rows['fixed 64 KiB'];
  const lines = [`${r.corpus}, ${r.cold ? 'cold' : 'warm'} (median of ${r.rounds} for blockvault, one run for restic):`, '',
    '| chunker | full: s | full: stored MB | day 2: s | day 2: read MB | day 2: stored MB | second VM: s | second VM: stored MB | second VM vs fixed | second VM vs restic |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|'];
  for (const [name, row] of Object.entries(r.rows)) {
    const s = (k: Step) => median(row[k].seconds).toFixed(2);
    const vs = (base: Record<Step, StepResult> | undefined) => (base ? `${(row['second VM'].storedBytes / base['second VM'].storedBytes).toFixed(2)}x` : '');
    lines.push(`| ${name} | ${s('full backup')} | ${mb(row['full backup'].storedBytes)} | ${s('day-2 increment')} | ${row['day-2 increment'].readBytes === null ? 'all' : mb(row['day-2 increment'].readBytes)} | ${mb(row['day-2 increment'].storedBytes)} | ${s('second VM')} | ${mb(row['second VM'].storedBytes)} | ${vs(fixed)} | ${vs(r.rows.restic)} |`);
  }
  if (r.shift) lines.push('', `FastCDC stream (the first ${mb(r.shift.streamBytes)} MB of the image), then the same after a 512-byte header: ${mb(r.shift.newBytes)} MB new, then ${mb(r.shift.shiftedNewBytes)} MB: ${(100 * (1 - r.shift.shiftedNewBytes / r.shift.newBytes)).toFixed(1)}% deduplicated.`);
  return lines.join('\n');
}

/** GB/s of each scanner over `data`, pushed in 4 MiB pieces; median of 5. */
function scanRate(make: () => { push(d: Uint8Array): number[]; finish(): number }, data: Buffer): number {
  const times: number[] = [];
  for (let k = 0; k < 5; k++) {
    const s = make();
    const t = process.hrtime.bigint();
    for (let at = 0; at < data.length; at += 4 << 20) s.push(data.subarray(at, at + (4 << 20)));
    s.finish();
    times.push(Number(process.hrtime.bigint() - t) / 1e9);
  }
  return data.length / median(times) / 1e9;
}

/** Native against TypeScript scanners, on 256 MiB of the image's data and on random bytes. */
export function scannerTable(c: Corpus): string {
  const data = Buffer.alloc(256 << 20);
  const fd = openSync(c.base, 'r');
  readSync(fd, data, 0, data.length, 1 << 30); // the second GiB: system files
  closeSync(fd);
  const lines = ['| scanner | data | TypeScript GB/s | native GB/s | native / TypeScript |', '|---|---|---:|---:|---:|'];
  const specs: ChunkerSpec[] = [{ kind: 'aligned-cdc', minBytes: 16384, avgBytes: 65536, maxBytes: 262144 }, { kind: 'cdc', minBytes: 16384, avgBytes: 65536, maxBytes: 262144 }];
  for (const [what, bytes] of [[`${c.name}, 256 MiB of file data`, data], ['random, 256 MiB', randomBytes(256 << 20)]] as const) {
    for (const spec of specs) {
      const ts = scanRate(() => tsScanner(spec), bytes);
      const native = nativeApi() ? scanRate(() => makeScanner(spec), bytes) : NaN;
      lines.push(`| ${spec.kind} | ${what} | ${ts.toFixed(2)} | ${native.toFixed(2)} | ${(native / ts).toFixed(1)}x |`);
    }
  }
  return lines.join('\n');
}

/** Random 4 KiB reads over the image's data through a fresh mount: fixed points against aligned-cdc ones, interleaved. */
export async function mountRandomTable(c: Corpus, rounds: number): Promise<string> {
  const work = join(realpathSync(cacheDir), `cdc-${c.name}`); // /proc/mounts names the real path
  const mnt = join(work, 'mnt');
  mkdirSync(mnt, { recursive: true });
  const repos: Record<string, string> = {};
  for (const config of configs.slice(0, 2)) {
    const repo = join(work, `mount-${config.init ? 'cdc' : 'fixed'}`);
    rmSync(repo, { recursive: true, force: true });
    execFileSync('bash', ['-c', `${bv} init -r ${repo} ${config.init} && ${bv} backup -r ${repo} --vm a --disk sda ${c.base} --json > /dev/null`]);
    repos[config.name] = repo;
  }
  const offsets = dataOffsets(c.base, c.sizeBytes, 2000);
  const times: Record<string, { cold: number[]; warm: number[] }> = {};
  for (let r = 0; r < rounds; r++) {
    for (const [name, repo] of Object.entries(repos)) {
      dropCaches();
      const server = await startMount([cli, 'mount', '-r', repo, mnt], mnt);
      try {
        const point = readdirSync(join(mnt, 'a', 'sda')).find((n) => n !== 'latest')!;
        const fd = openSync(join(mnt, 'a', 'sda', point, 'disk.raw'), 'r');
        const buf = Buffer.alloc(4096);
        const pass = () => { const t = process.hrtime.bigint(); for (const o of offsets) readSync(fd, buf, 0, 4096, o); return Number(process.hrtime.bigint() - t) / 1e6 / offsets.length; };
        const entry = (times[name] ??= { cold: [], warm: [] });
        entry.cold.push(pass());
        entry.warm.push(pass());
        closeSync(fd);
      } finally {
        await stopMount(server, mnt);
      }
    }
  }
  for (const repo of Object.values(repos)) rmSync(repo, { recursive: true, force: true });
  return ['| points | random 4 KiB read, cold, mean ms | warm, mean ms |', '|---|---:|---:|',
    ...Object.entries(times).map(([name, t]) => `| ${name} | ${median(t.cold).toFixed(3)} | ${median(t.warm).toFixed(4)} |`)].join('\n');
}

async function main(): Promise<void> {
  const arg = (name: string) => { const k = process.argv.indexOf(name); return k > 0 ? process.argv[k + 1] : undefined; };
  const rounds = Number(arg('--rounds') ?? 3);
  const names = (arg('--corpus') ?? 'vm4g,mix6g').split(',');
  const corpora = names.map((n) => (n === 'mix6g' ? corpusMixed() : corpus()));
  const cold = process.getuid?.() === 0 && !process.argv.includes('--warm');
  // Each table as soon as it is measured: a later step that fails loses nothing before it.
  const say = (text: string) => process.stdout.write(`${text}\n\n`);
  say(`date ${new Date().toISOString()}`);
  say(scannerTable(corpora[0]));
  for (const c of corpora) {
    for (const mode of cold ? [false, true] : [false]) {
      process.stderr.write(`bench: cdc ${c.name} ${mode ? 'cold' : 'warm'}\n`);
      say(cdcTable(runCdc(c, mode, rounds)));
    }
  }
  if (cold) say(await mountRandomTable(corpora[0], rounds));
}

if (process.argv[1]?.endsWith('cdc.js')) await main();
