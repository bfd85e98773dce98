// `npm run bench`: the whole-run benchmark. On the cached 4 GiB corpus:
// blockvault (median of 3 runs) beside restic and borg (one run each) for
// full backup, unchanged re-backup, day-2 backup and restore; the chunk-size
// experiment behind the default; tinybench micro-benchmarks. Writes
// bench/results/latest.{json,md} and the results section of docs/BENCHMARKS.md.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { corpus, cacheDir } from './corpus.js';
import { duBytes, measure, median } from './measure.js';
import { runMicro, type MicroResult } from './micro.js';
import { indexRows, runIndexScale, runScale, scaleRows } from './scale.js';
import { bigDiskTables, runBigDisk } from './big-disk.js';
import { checkRepairTable, gcTables, runCheckRepair, runGcReal, runGcScale } from './gc.js';
import { runCbt } from './cbt.js';
import { mountTable, runMount } from './mount.js';
import { bootLine, runBoot } from './boot.js';
import { barChart } from './chart.js';
import { cliPathsTable, runCliPaths } from './cli-paths.js';
import { openScaleTable, runOpenScale } from './open-scale.js';
import { concurrentCbtTable, runConcurrentCbt } from './concurrent-cbt.js';
import { coldReportText, runCold, type ColdReport } from './cold.js';
import { cdcTable, mountRandomTable, runCdc, scannerTable } from './cdc.js';
import { qmpTable, runQmpBench } from './qmp.js';
import { corpusMixed } from './corpus.js';
import { sha256File } from '../scripts/vm-disk.js';

const top = new URL('../..', import.meta.url).pathname;
const cli = join(top, 'dist', 'engine', 'cli', 'main.js');
const work = join(cacheDir, 'work');
const runs = Number(process.env.BENCH_RUNS ?? 3);

interface Step { tool: string; step: string; seconds: number; rssBytes: number; storedBytes: number | null; outputAllocatedBytes?: number }

const bv = (args: string[], opts: Parameters<typeof measure>[2] = {}) => measure(process.execPath, [cli, ...args], opts);

async function blockvaultRun(c: ReturnType<typeof corpus>, i: number): Promise<Step[]> {
  const repo = join(work, `bv-${i}`);
  rmSync(repo, { recursive: true, force: true });
  execFileSync(process.execPath, [cli, 'init', '-r', repo]);
  const steps: Step[] = [];
  const backup = async (step: string, image: string) => {
    const m = await bv(['backup', '-r', repo, '--vm', 'bench', '--disk', 'sda', image, '--json']);
    steps.push({ tool: 'blockvault', step, seconds: m.seconds, rssBytes: m.rssBytes, storedBytes: JSON.parse(m.stdout).bytesStored });
  };
  await backup('full backup', c.base);
  await backup('unchanged re-backup', c.base);
  await backup('day-2 backup', c.day2);
  const clone = await bv(['backup', '-r', repo, '--vm', 'clone', '--disk', 'sda', c.day2, '--json']);
  steps.push({ tool: 'blockvault', step: 'clone VM backup', seconds: clone.seconds, rssBytes: clone.rssBytes, storedBytes: JSON.parse(clone.stdout).bytesStored });
  const out = join(work, 'bv-restore.raw');
  rmSync(out, { force: true });
  const m = await bv(['restore', '-r', repo, 'bench/sda@latest', out]);
  steps.push({ tool: 'blockvault', step: 'restore', seconds: m.seconds, rssBytes: m.rssBytes, storedBytes: null, outputAllocatedBytes: statSync(out).blocks * 512 });
  if (i === 0 && sha256File(out) !== sha256File(c.day2)) throw new Error('blockvault restore differs from the source');
  rmSync(out, { force: true });
  const fast = await bv(['restore', '-r', repo, 'bench/sda@latest', out, '--no-sync']);
  steps.push({ tool: 'blockvault', step: 'restore --no-sync', seconds: fast.seconds, rssBytes: fast.rssBytes, storedBytes: null, outputAllocatedBytes: statSync(out).blocks * 512 });
  rmSync(out, { force: true });
  return steps;
}

async function resticRun(c: ReturnType<typeof corpus>): Promise<Step[]> {
  const repo = join(work, 'restic');
  rmSync(repo, { recursive: true, force: true });
  const env = { RESTIC_REPOSITORY: repo, RESTIC_PASSWORD: 'bench', RESTIC_CACHE_DIR: join(work, 'restic-cache') };
  execFileSync('restic', ['init', '-q'], { env: { ...process.env, ...env } });
  const steps: Step[] = [];
  const backup = async (step: string, image: string) => {
    const m = await measure('restic', ['backup', '-q', '--stdin', '--stdin-filename', 'disk.raw', '--host', 'bench'], { stdin: image, env });
    steps.push({ tool: 'restic', step, seconds: m.seconds, rssBytes: m.rssBytes, storedBytes: null });
  };
  let before = duBytes(repo);
  await backup('full backup', c.base);
  steps[0].storedBytes = duBytes(repo) - before;
  before = duBytes(repo);
  await backup('unchanged re-backup', c.base);
  steps[1].storedBytes = duBytes(repo) - before;
  before = duBytes(repo);
  await backup('day-2 backup', c.day2);
  steps[2].storedBytes = duBytes(repo) - before;
  before = duBytes(repo);
  const clone = await measure('restic', ['backup', '-q', '--stdin', '--stdin-filename', 'clone.raw', '--host', 'clone'], { stdin: c.day2, env });
  steps.push({ tool: 'restic', step: 'clone VM backup', seconds: clone.seconds, rssBytes: clone.rssBytes, storedBytes: duBytes(repo) - before });
  const out = join(work, 'restic-restore.raw');
  const m = await measure('restic', ['dump', '-q', '--host', 'bench', 'latest', 'disk.raw'], { stdoutFile: out, env });
  steps.push({ tool: 'restic', step: 'restore', seconds: m.seconds, rssBytes: m.rssBytes, storedBytes: null, outputAllocatedBytes: statSync(out).blocks * 512 });
  rmSync(out, { force: true });
  return steps;
}

async function borgRun(c: ReturnType<typeof corpus>): Promise<Step[]> {
  const repo = join(work, 'borg');
  rmSync(repo, { recursive: true, force: true });
  const env = { BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK: 'yes', BORG_RELOCATED_REPO_ACCESS_IS_OK: 'yes', BORG_BASE_DIR: join(work, 'borg-base') };
  execFileSync('borg', ['init', '-e', 'none', repo], { env: { ...process.env, ...env } });
  const steps: Step[] = [];
  const names = ['full', 'again', 'day2', 'clone'];
  const stepNames = ['full backup', 'unchanged re-backup', 'day-2 backup', 'clone VM backup'];
  for (const [k, image] of [c.base, c.base, c.day2, c.day2].entries()) {
    const before = duBytes(repo);
    const m = await measure('borg', ['create', `${repo}::${names[k]}`, '-'], { stdin: image, env });
    steps.push({ tool: 'borg', step: stepNames[k], seconds: m.seconds, rssBytes: m.rssBytes, storedBytes: duBytes(repo) - before });
  }
  const out = join(work, 'borg-restore.raw');
  const m = await measure('borg', ['extract', '--stdout', `${repo}::day2`], { stdoutFile: out, env });
  steps.push({ tool: 'borg', step: 'restore', seconds: m.seconds, rssBytes: m.rssBytes, storedBytes: null, outputAllocatedBytes: statSync(out).blocks * 512 });
  rmSync(out, { force: true });
  return steps;
}

interface ChunkSizeRow { chunkBytes: number; fullSeconds: number; fullStoredBytes: number; day2StoredBytes: number; amplification: number; pointBytes: number }

async function chunkSizeExperiment(c: ReturnType<typeof corpus>): Promise<ChunkSizeRow[]> {
  const changed = c.day2Extents.reduce((a, e) => a + e.length, 0);
  const rows: ChunkSizeRow[] = [];
  for (const size of ['64K', '128K', '256K', '1M', '4M']) {
    const repo = join(work, `chunk-${size}`);
    rmSync(repo, { recursive: true, force: true });
    execFileSync(process.execPath, [cli, 'init', '-r', repo, '--chunk-size', size]);
    const full = await bv(['backup', '-r', repo, '--vm', 'b', '--disk', 'sda', c.base, '--json']);
    const day2 = await bv(['backup', '-r', repo, '--vm', 'b', '--disk', 'sda', c.day2, '--json']);
    const f = JSON.parse(full.stdout);
    const d = JSON.parse(day2.stdout);
    rows.push({
      chunkBytes: f.bytesTotal / f.chunksTotal, fullSeconds: full.seconds, fullStoredBytes: f.bytesStored,
      day2StoredBytes: d.bytesStored, amplification: d.bytesStored / changed, pointBytes: duBytes(join(repo, 'points')) / 2,
    });
    rmSync(repo, { recursive: true, force: true });
  }
  return rows;
}

const mb = (b: number) => (b / 1e6).toFixed(0);
const fmt = (x: number, d = 2) => x.toFixed(d);

function table(steps: Step[], c: ReturnType<typeof corpus>): string {
  const lines = ['| step | tool | wall s | MB/s of disk | MB/s of data | peak RSS MB | stored MB | vs restic | vs borg |', '|---|---|---:|---:|---:|---:|---:|---:|---:|'];
  for (const step of ['full backup', 'unchanged re-backup', 'day-2 backup', 'clone VM backup', 'restore', 'restore --no-sync']) {
    const of = (tool: string) => steps.find((s) => s.tool === tool && s.step === (tool === 'blockvault' ? step : step.replace(' --no-sync', '')));
    for (const tool of ['blockvault', 'restic', 'borg']) {
      const s = of(tool);
      if (!s || (tool !== 'blockvault' && step.endsWith('--no-sync'))) continue;
      const r = of('restic');
      const b = of('borg');
      const vs = (p?: Step) => (tool === 'blockvault' && p ? `${fmt(p.seconds / s.seconds, 1)}x faster` : '');
      const stored = s.storedBytes === null ? (s.outputAllocatedBytes !== undefined ? `(output ${mb(s.outputAllocatedBytes)} allocated)` : '') : mb(s.storedBytes);
      lines.push(`| ${step} | ${tool} | ${fmt(s.seconds)} | ${mb(c.sizeBytes / s.seconds)} | ${mb(c.dataBytes / s.seconds)} | ${mb(s.rssBytes)} | ${stored} | ${vs(r)} | ${vs(b)} |`);
    }
  }
  return lines.join('\n');
}

function microTable(micro: MicroResult[]): string {
  return ['| hot path | median | throughput |', '|---|---:|---:|', ...micro.map((m) => `| ${m.name} | ${m.medianMs < 0.1 ? `${(m.medianMs * 1000).toFixed(1)} µs` : `${m.medianMs.toFixed(2)} ms`} | ${m.mbPerSecond ? `${m.mbPerSecond.toFixed(0)} MB/s` : `${m.opsPerSecond.toFixed(0)} op/s`} |`)].join('\n');
}

function chunkTable(rows: ChunkSizeRow[]): string {
  return ['| chunk size | full backup s | full stored MB | day-2 stored MB | day-2 stored / changed | restore point file |', '|---:|---:|---:|---:|---:|---:|',
    ...rows.map((r) => `| ${r.chunkBytes / 1024} KiB | ${fmt(r.fullSeconds)} | ${mb(r.fullStoredBytes)} | ${fmt(r.day2StoredBytes / 1e6, 1)} | ${fmt(r.amplification, 1)}x | ${(r.pointBytes / 1024).toFixed(0)} KiB |`)].join('\n');
}

/** bench/cdc.ts on both corpora, warm and (as root) cold, then the scanners and random reads through the mount. */
async function contentDefined(runs: number): Promise<string> {
  const cold = process.getuid?.() === 0;
  const parts: string[] = [];
  for (const corpusOf of [() => corpus(), corpusMixed]) for (const mode of cold ? [false, true] : [false]) parts.push(cdcTable(runCdc(corpusOf(), mode, runs)));
  parts.push(scannerTable(corpus()));
  if (cold) parts.push(await mountRandomTable(corpus(), runs));
  return parts.join('\n\n');
}

async function main(): Promise<void> {
  mkdirSync(work, { recursive: true });
  const c = corpus();
  const date = new Date().toISOString();
  const machine = `${cpus().length} x ${cpus()[0]?.model ?? 'cpu'}, ${(totalmem() / 1024 ** 3).toFixed(0)} GiB RAM, Linux ${execFileSync('uname', ['-r'], { encoding: 'utf8' }).trim()}, Node ${process.version}`;
  const versions = `restic ${execFileSync('restic', ['version'], { encoding: 'utf8' }).split(' ')[1]}, borg ${execFileSync('borg', ['--version'], { encoding: 'utf8' }).trim().split(' ')[1]}`;
  process.stderr.write(`bench: corpus ${c.base}: ${mb(c.sizeBytes)} MB disk, ${mb(c.dataBytes)} MB data\n`);

  process.stderr.write('bench: micro-benchmarks\n');
  const micro = await runMicro();
  // Interleaved rounds: this machine's speed drifts by +-30% within minutes,
  // so every tool is measured in every phase and compared by medians.
  const bvRuns: Step[][] = [];
  const resticRuns: Step[][] = [];
  const borgRuns: Step[][] = [];
  for (let i = 0; i < runs; i++) {
    process.stderr.write(`bench: round ${i + 1}/${runs}: blockvault, restic, borg\n`);
    bvRuns.push(await blockvaultRun(c, i));
    resticRuns.push(await resticRun(c));
    borgRuns.push(await borgRun(c));
  }
  const medianSteps = (all: Step[][]): Step[] => all[0].map((s, k) => ({ ...s, seconds: median(all.map((r) => r[k].seconds)), rssBytes: Math.max(...all.map((r) => r[k].rssBytes)) }));
  const bvMedian = medianSteps(bvRuns);
  const restic = medianSteps(resticRuns);
  const borg = medianSteps(borgRuns);
  process.stderr.write('bench: changed-block tracking\n');
  const cbt = await runCbt(c, runs, false);
  process.stderr.write('bench: mount reads\n');
  const mountResult = await runMount(c);
  process.stderr.write('bench: boot from backup\n');
  const boot = await runBoot();
  process.stderr.write('bench: start-up and restore into a pipe\n');
  const cliPaths = [runCliPaths(false), ...(process.getuid?.() === 0 ? [runCliPaths(true)] : [])];
  process.stderr.write('bench: many writers (opening 10,000 packs; concurrent CBT increments)\n');
  const openScale = [await runOpenScale(10_000, 1_000, false), ...(process.getuid?.() === 0 ? [await runOpenScale(10_000, 1_000, true)] : [])];
  const concurrentCbt = await runConcurrentCbt();
  process.stderr.write('bench: whole commands, warm and cold, on two corpora\n');
  const wholeCommands: ColdReport[] = [];
  for (const corpusOf of [() => c, corpusMixed]) {
    wholeCommands.push(await runCold(corpusOf(), false, runs, true));
    if (process.getuid?.() === 0) wholeCommands.push(await runCold(corpusOf(), true, runs, true));
  }
  process.stderr.write('bench: content-defined chunking (fixed, aligned-cdc and restic; a second VM installed apart)\n');
  const cdcText = await contentDefined(runs);
  process.stderr.write('bench: running VMs over QMP (freeze time, guest write latency, increment against the offline qcow2 bitmap)\n');
  const qmpText = qmpTable(await runQmpBench(runs, process.getuid?.() === 0));
  process.stderr.write('bench: chunk sizes\n');
  const chunkRows = await chunkSizeExperiment(c);
  rmSync(work, { recursive: true, force: true });
  process.stderr.write('bench: disks of any size (16 GiB, 256 GiB, 2 TiB holding the same 4 GiB)\n');
  const bigDisk = await runBigDisk({ old: process.env.BLOCKVAULT_BENCH_OLD ?? null });
  process.stderr.write('bench: gc, check --read-data and repair index (30 points of the corpus; mark scale model)\n');
  const gcReal = await runGcReal(runs);
  const checkRepair = await runCheckRepair(runs);
  const gcScale = await runGcScale();
  process.stderr.write('bench: scale model (1 TiB of chunk ids)\n');
  const scale = await runScale();
  const indexScale = await runIndexScale();
  const scaleTable = [...scaleRows(scale), '', '| chunk index | value |', '|---|---:|',
    ...indexRows(indexScale)].join('\n');

  const steps = [...bvMedian, ...restic, ...borg];
  const changed = c.day2Extents.reduce((a, e) => a + e.length, 0);
  const markdown = `Run ${date} on ${machine}; ${versions}.
Corpus: ${mb(c.sizeBytes)} MB GPT disk image, ${mb(c.dataBytes)} MB of data (real system files in ext4 and 300 MiB incompressible), the rest holes; day 2 = 300 scattered 64 KiB guest writes plus ~16 MiB of new files: ${mb(changed)} MB changed in ${c.day2Extents.length} extents (${((100 * changed) / c.dataBytes).toFixed(1)}% of the data). Page cache warm for every tool; ${runs} interleaved rounds of blockvault, restic and borg, medians (peak RSS: the largest); restic and borg at default settings (restic: zstd auto + AES; borg: lz4, no encryption), both reading the image on stdin.

${table(steps, c)}

Changed-block tracking (day 2 after the base backup; restic's time is its day-2 backup above, same run):

| increment | wall s | read MB | stored MB | vs restic day-2 backup |
|---|---:|---:|---:|---:|
| exact changed-extents list (--changed) | ${fmt(cbt.extents.seconds)} | ${mb(cbt.extents.bytesRead)} | ${mb(cbt.extents.bytesStored)} | ${fmt((restic.find((s) => s.step === 'day-2 backup')?.seconds ?? 0) / cbt.extents.seconds, 1)}x faster (restic stored ${mb(restic.find((s) => s.step === 'day-2 backup')?.storedBytes ?? 0)} MB) |
| QEMU dirty bitmap, qcow2 via qemu-nbd (--bitmap) | ${fmt(cbt.bitmap.seconds)} | ${mb(cbt.bitmap.bytesRead)} | ${mb(cbt.bitmap.bytesStored)} | ${fmt((restic.find((s) => s.step === 'day-2 backup')?.seconds ?? 0) / cbt.bitmap.seconds, 1)}x faster |

Reading a whole qemu-nbd export (${mb(cbt.nbdRead.dataBytes)} MB of data, zero extents skipped by both): blockvault's NBD client ${fmt(cbt.nbdRead.blockvaultSeconds)} s, qemu-img convert to a null target ${fmt(cbt.nbdRead.qemuImgSeconds)} s: ${((100 * cbt.nbdRead.qemuImgSeconds) / cbt.nbdRead.blockvaultSeconds).toFixed(0)}% of qemu-img's rate.

Reading restore points through the FUSE mount (\`node dist/bench/mount.js\`; cold = page cache dropped, fresh mount; streaming = the reader drops what it has read, as \`dd iflag=nocache\` does, so the page cache does not grow; page cache kept = a plain read, which on this VM also measures the cost of fresh memory past ~3 GiB, see docs/BENCHMARKS.md; three interleaved rounds of image file, null filesystem, blockvault and restic, medians, "x faster" being the median of per-round ratios; the null filesystem answers reads without touching data, with blockvault's mount options; blockvault at its defaults, stored checksums checked, no SHA-256 re-hash):

${mountTable(mountResult)}

${bootLine(boot)}

Start-up and restore into a slower reader (\`node dist/bench/cli-paths.js --cold\`; whole-process wall time, medians of interleaved runs against the baseline beside it; cold = page cache dropped before every command, as root):

${cliPaths.map(cliPathsTable).join('\n\n')}

Whole commands, warm and cold, each beside this machine's limit measured in the same round (\`node dist/bench/cold.js --cold\`; whole-process wall time, medians of ${runs} rounds; cold = page cache dropped before every command; see docs/BENCHMARKS.md "Whole commands, cold"):

${coldReportText(wholeCommands)}

Many writers (\`node dist/bench/open-scale.js\`, \`node dist/bench/concurrent-cbt.js\`; see docs/BENCHMARKS.md "Many writers"):

${openScaleTable(openScale)}

${concurrentCbtTable(concurrentCbt)}

Content-defined chunking (\`node dist/bench/cdc.js\`; see docs/BENCHMARKS.md "Content-defined chunking"):

${cdcText}

Running VMs over QMP (\`node dist/bench/qmp.js\`; see docs/BENCHMARKS.md "Running VMs"):

${qmpText}

Chunk size (blockvault, same corpus; "day-2 stored / changed" is the write amplification of scattered 64 KiB guest writes):

${chunkTable(chunkRows)}

Disks of any size (\`node dist/bench/big-disk.js [--old <previous main.js>]\`; the same 4 GiB of data on disks of three sizes; whole-process wall time and peak RSS, medians; the previous release beside it when BLOCKVAULT_BENCH_OLD names its main.js):

${bigDiskTables(bigDisk)}

Garbage collection (\`node dist/bench/gc.js\`; see docs/BENCHMARKS.md "Garbage collection"):

${gcTables(gcReal, gcScale)}

${checkRepairTable(checkRepair)}

Restore-point metadata at scale (\`node dist/bench/scale.js\`):

${scaleTable}

Micro-benchmarks (tinybench, medians, one core):

${microTable(micro)}
`;
  mkdirSync(join(top, 'bench', 'results'), { recursive: true });
  const record = JSON.stringify({ date, machine, versions, corpus: c, steps, bvRuns, resticRuns, borgRuns, cbt, mount: mountResult, boot, cliPaths, wholeCommands, openScale, concurrentCbt, chunkRows, bigDisk, scale, indexScale, micro }, null, 2);
  writeFileSync(join(top, 'bench', 'results', `${date.slice(0, 19).replace(/:/g, '')}.json`), record); // one file per run
  writeFileSync(join(top, 'bench', 'results', 'latest.json'), record);
  writeFileSync(join(top, 'bench', 'results', 'latest.md'), markdown);
  const seconds = (tool: string, step: string) => steps.find((s) => s.tool === tool && s.step === step)?.seconds;
  const resticDay2 = seconds('restic', 'day-2 backup');
  const chartRows = [
    ...['full backup', 'unchanged re-backup', 'day-2 backup', 'clone VM backup', 'restore'].map((step) => ({ workload: step, seconds: { blockvault: seconds('blockvault', step), restic: seconds('restic', step), borg: seconds('borg', step) } })),
    { workload: 'day 2 with CBT (--changed)', seconds: { blockvault: cbt.extents.seconds, restic: resticDay2, borg: seconds('borg', 'day-2 backup') } },
    { workload: 'mount: stream disk.raw', seconds: { blockvault: mountResult.streamColdSeconds, restic: mountResult.resticStreamSeconds ?? undefined } },
    { workload: 'mount: read disk.raw', seconds: { blockvault: mountResult.sequentialColdSeconds, restic: mountResult.resticSequentialSeconds ?? undefined } },
    { workload: 'mount: stream first GiB', seconds: { blockvault: mountResult.blockvaultRangeSeconds, restic: mountResult.resticRangeSeconds ?? undefined } },
  ];
  writeFileSync(join(top, 'docs', 'benchmarks.svg'), barChart(`blockvault vs restic and borg (${date.slice(0, 10)})`, chartRows, ['blockvault', 'restic', 'borg']));
  const doc = join(top, 'docs', 'BENCHMARKS.md');
  const text = readFileSync(doc, 'utf8');
  const updated = text.replace(/<!-- results:start -->[\s\S]*<!-- results:end -->/, `<!-- results:start -->\n${markdown}\n<!-- results:end -->`);
  writeFileSync(doc, updated);
  process.stdout.write(`${markdown}\n`);
}

await main();
