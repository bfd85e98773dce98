// Backups of a running VM over QMP (bench/qmp.ts), against the same
// increment taken offline from a qcow2 image with a persistent bitmap, in
// one run, whole-process wall time warm and cold (page cache dropped before
// every command):
//   - how long the freeze transaction holds the guest's I/O (freezeMs, as
//     blockvault measures it around the QMP transaction: an upper bound);
//   - guest write latency (64 KiB writes at random offsets through the
//     guest's drive, HMP qemu-io, the QMP round trip included) with no
//     backup running, against the same during a full backup, when every
//     first write to a cluster is copied aside first (copy-before-write);
//   - with `--guest-agent` (a guest that runs qemu-ga: the boot fixture's
//     agent image), how long the guest's filesystems stay frozen
//     (quiescedMs: freeze call to thaw answer) beside the transaction's;
//   - the nightly increment: `backup --qmp` of the running VM against
//     `backup --bitmap` of a stopped copy (qemu-nbd), the same changes
//     (the corpus' day-2 extents, its real bytes) applied to both.
// The VM runs no guest OS (TCG, SeaBIOS idle): the guest's load is the
// writes the bench makes. Run: node dist/bench/qmp.js [--rounds 3] [--warm]
import { execFileSync, spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, readSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { QmpClient } from '../engine/qmp/client.js';
import { cacheDir, corpus, type Corpus } from './corpus.js';
import { run } from './cold.js';
import { median } from './measure.js';

const top = new URL('../..', import.meta.url).pathname;
const bv = `${process.execPath} ${join(top, 'dist', 'engine', 'cli', 'main.js')}`;

interface Extent { start: number; length: number }
interface Vm { qmp: QmpClient; qmpPath: string; stop(): Promise<void> }

/** The day-2 extents as files of their real bytes (qemu-io write -s reads its buffer from a file). */
function extentFiles(c: Corpus, dir: string): Array<Extent & { file: string }> {
  mkdirSync(dir, { recursive: true });
  const fd = openSync(c.day2, 'r');
  try {
    return c.day2Extents.map((e, i) => {
      const file = join(dir, `e${i}.bin`);
      if (!existsSync(file)) {
        const b = Buffer.alloc(e.length);
        readSync(fd, b, 0, e.length, e.start);
        writeFileSync(file, b);
      }
      return { ...e, file };
    });
  } finally {
    closeSync(fd);
  }
}

async function startVm(work: string, image: string, more: string[] = []): Promise<Vm> {
  const qmpPath = join(work, 'vm.qmp');
  const testPath = join(work, 'bench.qmp');
  rmSync(qmpPath, { force: true });
  rmSync(testPath, { force: true });
  const proc = spawn('qemu-system-x86_64', ['-accel', 'tcg', '-nodefaults', '-display', 'none', '-m', '256', '-name', 'bench',
    '-qmp', `unix:${qmpPath},server=on,wait=off`, '-qmp', `unix:${testPath},server=on,wait=off`,
    '-drive', `file=${image},if=none,id=vda-drive,format=qcow2,node-name=vda-fmt`, '-device', 'virtio-blk-pci,drive=vda-drive,id=vda', ...more], { stdio: 'ignore' });
  for (const end = Date.now() + 30_000; !(existsSync(qmpPath) && existsSync(testPath)); await new Promise((r) => setTimeout(r, 50))) {
    if (Date.now() > end || proc.exitCode !== null) { proc.kill('SIGKILL'); throw new Error('QEMU did not start'); }
  }
  const qmp = await QmpClient.connect(testPath, 30_000);
  return { qmp, qmpPath, stop: async () => { qmp.close(); proc.kill('SIGKILL'); await new Promise((r) => proc.once('close', r)); } };
}

const hmp = (vm: Vm, line: string) => vm.qmp.execute<string>('human-monitor-command', { 'command-line': line }, 120_000);

/** Milliseconds of each of `n` 64 KiB writes at random 64 KiB-aligned offsets, one after another. */
async function writeLatencies(vm: Vm, sizeBytes: number, n: number, until?: () => boolean): Promise<number[]> {
  const ms: number[] = [];
  for (let i = 0; i < n && (until ? !until() : true); i++) {
    const off = Math.floor(Math.random() * (sizeBytes / 65536)) * 65536;
    const t = process.hrtime.bigint();
    await hmp(vm, `qemu-io vda-drive "write -P ${i % 251} ${off} 64k"`);
    ms.push(Number(process.hrtime.bigint() - t) / 1e6);
  }
  return ms;
}

const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * p))];

export interface QmpReport {
  rounds: number; corpus: string; changedBytes: number;
  freezeMs: number[]; latency: { idle: number[]; backup: number[]; cbw: number[] };
  agent: { freezeMs: number[]; quiescedMs: number[] };
  increments: Record<'warm' | 'cold', { online: number[]; offline: number[] }>;
}

export async function runQmpBench(rounds: number, cold: boolean): Promise<QmpReport> {
  const c = corpus();
  const work = join(cacheDir, 'qmp');
  rmSync(work, { recursive: true, force: true });
  mkdirSync(work, { recursive: true });
  const extents = extentFiles(c, join(cacheDir, 'qmp-extents'));
  const online = join(work, 'online.qcow2');
  const offline = join(work, 'offline.qcow2');
  process.stderr.write('bench: qmp: converting the corpus to qcow2\n');
  execFileSync('qemu-img', ['convert', '-q', '-f', 'raw', '-O', 'qcow2', c.base, online]);
  execFileSync('cp', [online, offline]);
  const env = { BLOCKVAULT_RUN_DIR: join(work, 'run') };
  const repoOn = join(work, 'repo-online');
  const repoOff = join(work, 'repo-offline');
  execFileSync('bash', ['-c', `${bv} init -r ${repoOn} && ${bv} init -r ${repoOff}`]);
  const report: QmpReport = { rounds, corpus: c.name, changedBytes: c.day2Extents.reduce((a, e) => a + e.length, 0), freezeMs: [], latency: { idle: [], backup: [], cbw: [] }, agent: { freezeMs: [], quiescedMs: [] }, increments: { warm: { online: [], offline: [] }, cold: { online: [], offline: [] } } };
  const vm = await startVm(work, online);
  try {
    report.latency.idle = await writeLatencies(vm, c.sizeBytes, 200);
    // The first (full) backup, with the guest writing all along.
    let done = false;
    const full = new Promise<void>((resolve, reject) => {
      const child = spawn('bash', ['-c', `${bv} backup -r ${repoOn} --vm bench --qmp ${vm.qmpPath} --scratch ${work} --json > ${join(work, 'full.json')}`], { stdio: 'ignore', env: { ...process.env, ...env } });
      child.on('close', (code) => { done = true; if (code === 0) resolve(); else reject(new Error(`full backup exited ${code}`)); });
    });
    await new Promise((r) => setTimeout(r, 1500)); // past the freeze
    report.latency.backup = await writeLatencies(vm, c.sizeBytes, 100_000, () => done);
    await full;
    // Copy-before-write alone: a backup held right after its freeze (a test hook), nothing reading.
    const pause = join(work, 'pause');
    const held = new Promise<void>((resolve, reject) => {
      const child = spawn('bash', ['-c', `${bv} backup -r ${repoOn} --vm bench --qmp ${vm.qmpPath} --scratch ${work} --json > /dev/null`], { stdio: 'ignore', env: { ...process.env, ...env, BLOCKVAULT_TEST_PAUSE_AT: `qmp-exported:${pause}` } });
      child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`held backup exited ${code}`))));
    });
    for (const end = Date.now() + 60_000; !existsSync(`${pause}.reached`); await new Promise((r) => setTimeout(r, 20))) if (Date.now() > end) throw new Error('the held backup did not reach its freeze');
    report.latency.cbw = await writeLatencies(vm, c.sizeBytes, 200);
    writeFileSync(`${pause}.go`, '');
    await held; // it also absorbs the latency writes into an increment
    execFileSync('bash', ['-c', `${bv} backup -r ${repoOff} --vm bench --disk vda ${offline} --json > /dev/null && qemu-img bitmap --add ${offline} nightly`]);
    for (const mode of cold ? ['warm', 'cold'] as const : ['warm'] as const) {
      for (let r = 0; r < rounds; r++) {
        for (const e of extents) await hmp(vm, `qemu-io vda-drive "write -s ${e.file} ${e.start} ${e.length}"`);
        for (let k = 0; k < extents.length; k += 200) {
          execFileSync('qemu-io', ['-f', 'qcow2', offline, ...extents.slice(k, k + 200).flatMap((e) => ['-c', `write -q -s ${e.file} ${e.start} ${e.length}`])], { stdio: 'ignore' });
        }
        const out = join(work, 'inc.json');
        const on = () => { report.increments[mode].online.push(run(`${bv} backup -r ${repoOn} --vm bench --qmp ${vm.qmpPath} --scratch ${work} --json > ${out}`, mode === 'cold', env).seconds); report.freezeMs.push((JSON.parse(execFileSync('cat', [out], { encoding: 'utf8' })) as { freezeMs: number }).freezeMs); };
        const off = () => { report.increments[mode].offline.push(run(`${bv} backup -r ${repoOff} --vm bench --disk vda --bitmap nightly ${offline} --json > /dev/null`, mode === 'cold').seconds); execFileSync('bash', ['-c', `qemu-img bitmap --remove ${offline} nightly && qemu-img bitmap --add ${offline} nightly`]); };
        if (r % 2 === 0) { on(); off(); } else { off(); on(); }
      }
    }
  } finally {
    await vm.stop();
  }
  try {
    report.agent = await agentQuiesce(work, env, Math.max(5, rounds * 3));
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  return report;
}

/** Backups of a guest that runs qemu-ga, with --guest-agent: the transaction's and the filesystems' freeze, per backup. */
async function agentQuiesce(work: string, env: Record<string, string>, backups: number): Promise<QmpReport['agent']> {
  const dir = join(work, 'agent');
  mkdirSync(dir, { recursive: true });
  process.stderr.write('bench: qmp: booting a guest with an agent\n');
  execFileSync('bash', [join(top, 'scripts', 'boot-fixture.sh'), join(dir, 'agent.raw'), 'bench agent', 'agent'], { stdio: 'ignore' });
  execFileSync('qemu-img', ['convert', '-q', '-f', 'raw', '-O', 'qcow2', join(dir, 'agent.raw'), join(dir, 'agent.qcow2')]);
  const agentPath = join(dir, 'vm.qga');
  const log = join(dir, 'serial.log');
  const vm = await startVm(dir, join(dir, 'agent.qcow2'), ['-machine', 'pc', '-serial', `file:${log}`, '-chardev', `socket,path=${agentPath},server=on,wait=off,id=qga0`,
    '-device', 'virtio-serial', '-device', 'virtserialport,chardev=qga0,name=org.qemu.guest_agent.0']);
  try {
    for (const end = Date.now() + 300_000; !(existsSync(log) && readFileSync(log, 'utf8').includes('BLOCKVAULT-AGENT-READY')); await new Promise((r) => setTimeout(r, 200))) {
      if (Date.now() > end) throw new Error(`the agent guest did not start its agent within 300 s: ${existsSync(log) ? readFileSync(log, 'utf8') : ''}`);
    }
    const repo = join(dir, 'repo');
    execFileSync('bash', ['-c', `${bv} init -r ${repo}`]);
    const out: QmpReport['agent'] = { freezeMs: [], quiescedMs: [] };
    for (let i = 0; i < backups; i++) {
      const r = JSON.parse(execFileSync('bash', ['-c', `${bv} backup -r ${repo} --vm agent --qmp ${vm.qmpPath} --guest-agent ${agentPath} --scratch ${dir} --json`], { encoding: 'utf8', env: { ...process.env, ...env } })) as { freezeMs: number; quiescedMs: number | null; consistency: string };
      if (r.quiescedMs === null) throw new Error(`backup ${i + 1} with --guest-agent came out ${r.consistency}-consistent: the agent did not freeze`);
      out.freezeMs.push(r.freezeMs);
      out.quiescedMs.push(r.quiescedMs);
    }
    return out;
  } finally {
    await vm.stop();
  }
}

export function qmpTable(r: QmpReport): string {
  const f = (x: number) => x.toFixed(2);
  const lines = [
    `corpus ${r.corpus}, ${r.rounds} round(s); the increment writes ${(r.changedBytes / 1048576).toFixed(1)} MiB (the corpus' day-2 extents, their real bytes)`,
    '',
    `freeze transaction (guest I/O held): median ${f(median(r.freezeMs))} ms, max ${f(Math.max(...r.freezeMs))} ms over ${r.freezeMs.length} backups (goal < 50 ms)`,
    `with --guest-agent (qemu-ga in the guest): filesystems frozen median ${f(median(r.agent.quiescedMs))} ms, max ${f(Math.max(...r.agent.quiescedMs))} ms; the transaction inside that median ${f(median(r.agent.freezeMs))} ms, over ${r.agent.quiescedMs.length} backups`,
    `guest 64 KiB writes at random offsets, ms (HMP round trip included; n in brackets):`,
    `  no backup:                     median ${f(median(r.latency.idle))} p95 ${f(pct(r.latency.idle, 0.95))} (${r.latency.idle.length})`,
    `  fleecing on, nothing reading:  median ${f(median(r.latency.cbw))} p95 ${f(pct(r.latency.cbw, 0.95))} (${r.latency.cbw.length}), ${(median(r.latency.cbw) / median(r.latency.idle)).toFixed(2)}x (copy-before-write alone)`,
    `  during a full backup:          median ${f(median(r.latency.backup))} p95 ${f(pct(r.latency.backup, 0.95))} (${r.latency.backup.length}), ${(median(r.latency.backup) / median(r.latency.idle)).toFixed(2)}x (plus the backup's reads and CPU on 2 cores)`,
    '',
    '| increment | backup --qmp (running VM) | backup --bitmap (stopped qcow2, qemu-nbd) | ratio |',
    '|---|---|---|---|',
  ];
  for (const mode of ['warm', 'cold'] as const) {
    const x = r.increments[mode];
    if (!x.online.length) continue;
    lines.push(`| ${mode}, median s | ${f(median(x.online))} | ${f(median(x.offline))} | ${(median(x.online) / median(x.offline)).toFixed(2)}x |`);
  }
  return lines.join('\n');
}

async function main(): Promise<void> {
  const k = process.argv.indexOf('--rounds');
  const rounds = k > 0 ? Number(process.argv[k + 1]) : 3;
  const cold = process.getuid?.() === 0 && !process.argv.includes('--warm');
  process.stdout.write(`date ${new Date().toISOString()}\n\n${qmpTable(await runQmpBench(rounds, cold))}\n`);
}

if (process.argv[1]?.endsWith('qmp.js')) await main();
