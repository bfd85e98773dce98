// Backups of a running VM over QMP, against a real QEMU (TCG): a two-disk
// VM (the boot fixture's disk, grown by 32 MiB of scratch space the test
// writes to, and a data disk) written through its own drives with HMP
// qemu-io during the backup. Each point must restore to the disks exactly
// as they were at the freeze instant; the dirty bitmaps on the VM must be
// exactly the ones blockvault says.
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { atPause, cli, cliJson, cliPath, waitFile, type CliResult } from '../helpers/cli.js';
import { tempDir } from '../helpers/temp.js';
import { qcow2, serialLog, startVm, type TestVm } from '../helpers/qemu-vm.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const tail = 96 * MiB; // vda's bytes past the fixture's partitions, free for test writes

interface VmResult { group: string; consistency: string; freezeMs: number; quiescedMs: number | null; reasons: Record<string, string>; bitmaps: Record<string, string>; cleanedUp: string[]; disks: Array<{ disk: string; mode: string; bytesRead: number; id: string }> }

/** Runs the CLI in the background (for pause points), as a user's shell would; `pid` for signals. */
function cliBackground(args: string[], env: Record<string, string>, started?: (pid: number) => void): Promise<CliResult> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [cliPath, ...args], { env: { ...process.env, BLOCKVAULT_QUIET_NATIVE: '1', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    started?.(child.pid!);
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 180_000);
    child.on('close', (code, signal) => { clearTimeout(timer); resolve({ code, signal, stdout, stderr }); });
  });
}

/** Dirty 64 KiB chunks since the last backup, per disk (qcow2's 64 KiB clusters = the bitmap's granularity = the chunk size). */
class Dirty {
  private readonly sets = new Map<string, Set<number>>();
  constructor(readonly vm: TestVm) {}
  async write(disk: string, pattern: number, offset: number, length: number): Promise<void> {
    await this.vm.write(disk, pattern, offset, length);
    this.mark(disk, offset, length);
  }
  mark(disk: string, offset: number, length: number): void {
    const s = this.sets.get(disk) ?? new Set<number>();
    for (let c = Math.floor(offset / (64 * KiB)); c * 64 * KiB < offset + length; c++) s.add(c);
    this.sets.set(disk, s);
  }
  bytes(disk: string): number {
    return (this.sets.get(disk)?.size ?? 0) * 64 * KiB;
  }
  clear(): void {
    this.sets.clear();
  }
}

describe('backup --qmp: a running two-disk VM', () => {
  const dir = tempDir('bv-qmp-');
  const root = join(dir, 'repo');
  const scratch = join(dir, 'scratch');
  const env = { BLOCKVAULT_RUN_DIR: join(dir, 'run') };
  let vm: TestVm;
  let dirty: Dirty;
  const backup = (extra: string[] = [], more: Record<string, string> = {}) => cli(['backup', '-r', root, '--vm', 'web01', '--qmp', vm.qmpPath, '--scratch', scratch, '--json', ...extra], { env: { ...env, ...more } });
  const expectRestores = async (group: string, expected: Record<string, Buffer>, name: string) => {
    const out = join(dir, name);
    await cliJson(['restore', '-r', root, `web01@${group}`, '--to', out]);
    for (const [disk, bytes] of Object.entries(expected)) expect(readFileSync(join(out, `${disk}.raw`)).equals(bytes), `${name}: ${disk} differs from the disk at the freeze`).toBe(true);
  };
  const expectBitmaps = async (result: VmResult) => {
    for (const disk of ['vda', 'vdb']) expect(await vm.bitmaps(disk)).toEqual({ [result.bitmaps[disk]]: true });
  };

  beforeAll(async () => {
    mkdirSync(scratch);
    const raw = join(dir, 'fixture.raw');
    execFileSync('bash', [new URL('../../scripts/boot-fixture.sh', import.meta.url).pathname, raw, 'marker: a running VM backed up by blockvault'], { stdio: 'pipe' });
    qcow2(join(dir, 'vda.qcow2'), { from: raw });
    execFileSync('qemu-img', ['resize', '-q', join(dir, 'vda.qcow2'), '128M']);
    qcow2(join(dir, 'vdb.qcow2'), 32 * MiB);
    vm = await startVm(dir, [{ name: 'vda', file: join(dir, 'vda.qcow2') }, { name: 'vdb', file: join(dir, 'vdb.qcow2') }], { agent: true });
    dirty = new Dirty(vm);
    await cli(['init', '-r', root]);
  }, 300_000);

  afterAll(async () => {
    await vm?.stop();
  });

  it('takes every disk at the freeze instant: writes after it are absent, and the machine shape is kept', async () => {
    await dirty.write('vda', 0x11, tail, MiB);
    await dirty.write('vdb', 0x22, 0, 2 * MiB);
    const atFreeze = { vda: await vm.capture('vda', join(dir, 'a.raw')), vdb: await vm.capture('vdb', join(dir, 'b.raw')) };
    const pause = join(dir, 'p1');
    const running = cliBackground(['backup', '-r', root, '--vm', 'web01', '--qmp', vm.qmpPath, '--scratch', scratch, '--json'], { ...env, BLOCKVAULT_TEST_PAUSE_AT: `qmp-exported:${pause}` });
    await waitFile(`${pause}.reached`);
    // Frozen: these land on the disks but must not be in the point (copy-before-write keeps the old data).
    await dirty.write('vda', 0x33, tail, 128 * KiB);
    await dirty.write('vdb', 0x44, 0, 64 * KiB);
    await dirty.write('vdb', 0x45, 16 * MiB, 64 * KiB);
    writeFileSync(`${pause}.go`, '');
    const during = [dirty.write('vdb', 0x46, 64 * KiB, 192 * KiB), dirty.write('vda', 0x47, tail + 4 * MiB, 64 * KiB)]; // while it reads
    const r = await running;
    await Promise.all(during);
    expect(r.code, r.stderr).toBe(0);
    const result = JSON.parse(r.stdout) as VmResult;
    expect(result.disks.map((d) => [d.disk, d.mode])).toEqual([['vda', 'full'], ['vdb', 'full']]);
    expect(result.consistency).toBe('crash'); // the agent channel exists, but no agent answers in this guest
    expect(result.quiescedMs).toBeNull();
    expect(result.reasons.vda).toMatch(/no earlier restore point/);
    await expectRestores(result.group, atFreeze, 'out1');
    const now = await vm.capture('vdb', join(dir, 'b-now.raw'));
    expect(now[0]).toBe(0x44); // the frozen-time write did reach the live disk
    const saved = JSON.parse(readFileSync(join(dir, 'out1', 'web01.vm.json'), 'utf8')) as { consistency: string; machine: { machineType: string; memoryBytes: number; cpus: number; disks: Array<{ name: string; driver: string }> } };
    expect(saved.consistency).toBe('crash');
    expect(saved.machine).toMatchObject({ machineType: expect.stringMatching(/^pc-i440fx-/), memoryBytes: 256 * MiB, cpus: 1 });
    expect(saved.machine.disks.map((d) => [d.name, d.driver])).toEqual([['vda', 'virtio-blk-pci'], ['vdb', 'virtio-blk-pci']]);
    await expectBitmaps(result);
    expect(readdirSync(scratch)).toEqual([]);
    // What the next increment must read: every write after the freeze, whether it raced the read or not.
    dirty.clear();
    dirty.mark('vda', tail, 128 * KiB);
    dirty.mark('vda', tail + 4 * MiB, 64 * KiB);
    dirty.mark('vdb', 0, 256 * KiB);
    dirty.mark('vdb', 16 * MiB, 64 * KiB);
  }, 240_000);

  it('three nightly increments each read only the dirty clusters and restore byte for byte', async () => {
    for (const night of [1, 2, 3]) {
      for (let k = 0; k < 3 + night; k++) await dirty.write('vdb', 0x50 + night, (k * 7 + night) * 256 * KiB, 64 * KiB);
      await dirty.write('vda', 0x60 + night, tail + night * MiB, 3 * 64 * KiB);
      const expected = { vda: await vm.capture('vda', join(dir, 'a.raw')), vdb: await vm.capture('vdb', join(dir, 'b.raw')) };
      const r = await backup();
      expect(r.code, r.stderr).toBe(0);
      const result = JSON.parse(r.stdout) as VmResult;
      for (const d of result.disks) {
        expect(d.mode, `night ${night} ${d.disk}`).toBe('incremental');
        expect(d.bytesRead, `night ${night} ${d.disk}`).toBe(dirty.bytes(d.disk));
      }
      dirty.clear();
      await expectRestores(result.group, expected, `night${night}`);
      await expectBitmaps(result);
    }
    // The last night again, as qcow2 images: qemu-img sees the same disk contents.
    const out = join(dir, 'night3-qcow2');
    const restored = await cliJson<{ format: string; disks: Array<{ target: string }> }>(['restore', '-r', root, 'web01@latest', '--to', out, '--format', 'qcow2']);
    expect(restored.format).toBe('qcow2');
    for (const disk of ['vda', 'vdb']) {
      expect(execFileSync('qemu-img', ['info', '--output=json', join(out, `${disk}.qcow2`)], { encoding: 'utf8' })).toMatch(/"format": "qcow2"/);
      execFileSync('qemu-img', ['compare', '-q', '-f', 'qcow2', '-F', 'raw', join(out, `${disk}.qcow2`), join(dir, 'night3', `${disk}.raw`)]);
    }
    expect(readdirSync(out).sort()).toEqual(['vda.qcow2', 'vdb.qcow2', 'web01.vm.json']);
  }, 240_000);

  it('a blockvault killed mid-backup: the next run cleans up, and its increment holds every change', async () => {
    await dirty.write('vdb', 0x71, 3 * MiB, 64 * KiB);
    const killed = await backup([], { BLOCKVAULT_TEST_KILL_AT: 'qmp-exported:1' });
    expect(killed.signal).toBe('SIGKILL');
    expect(readdirSync(scratch).length).toBeGreaterThan(0); // its fleecing images
    expect(Object.keys(await vm.bitmaps('vdb'))).toHaveLength(2); // old (frozen) and new
    await dirty.write('vdb', 0x72, 5 * MiB, 64 * KiB);
    const expected = { vda: await vm.capture('vda', join(dir, 'a.raw')), vdb: await vm.capture('vdb', join(dir, 'b.raw')) };
    const r = await backup();
    expect(r.code, r.stderr).toBe(0);
    const result = JSON.parse(r.stdout) as VmResult;
    expect(result.cleanedUp.join(' ')).toMatch(/export bv-exp-0.*job bv-job-0.*node bv-fl-0.*file blockvault-fleece-/);
    const vdb = result.disks.find((d) => d.disk === 'vdb')!;
    expect(vdb.mode).toBe('incremental');
    expect(vdb.bytesRead).toBe(dirty.bytes('vdb')); // both writes: the one the killed run froze, and the one after
    dirty.clear();
    await expectRestores(result.group, expected, 'after-kill');
    await expectBitmaps(result);
    expect(readdirSync(scratch)).toEqual([]);
  }, 240_000);

  it('a bitmap removed behind blockvault\'s back means a full read, with the reason recorded', async () => {
    const before = await vm.bitmaps('vdb');
    await vm.qmp.execute('block-dirty-bitmap-remove', { node: 'vdb-fmt', name: Object.keys(before)[0] });
    const r = await backup();
    expect(r.code, r.stderr).toBe(0);
    const result = JSON.parse(r.stdout) as VmResult;
    expect(result.disks.map((d) => [d.disk, d.mode])).toEqual([['vda', 'incremental'], ['vdb', 'full']]);
    expect(result.reasons.vdb).toMatch(/dirty bitmap blockvault-\S+ of the parent is not on node vdb-fmt.*full read/);
    await expectBitmaps(result);
    dirty.clear();
  }, 120_000);

  it('refuses a second blockvault on the same VM by name, while the first runs on', async () => {
    const pause = join(dir, 'p2');
    const first = cliBackground(['backup', '-r', root, '--vm', 'web01', '--qmp', vm.qmpPath, '--scratch', scratch, '--json'], { ...env, BLOCKVAULT_TEST_PAUSE_AT: `qmp-exported:${pause}` });
    try {
      await waitFile(`${pause}.reached`);
      const second = await backup();
      expect(second.code, second.stderr).toBe(3);
      expect(second.stderr).toMatch(/VM web01 \(QMP .*vm\.qmp\) is being backed up by blockvault pid \d+ since/);
    } finally {
      writeFileSync(`${pause}.go`, '');
    }
    const r = await first;
    expect(r.code, r.stderr).toBe(0);
    await expectBitmaps(JSON.parse(r.stdout) as VmResult);
  }, 120_000);

  it('SIGTERM mid-backup: everything on the VM is undone, the bitmap merged back, and the next increment has every change', async () => {
    const before = { vda: await vm.bitmaps('vda'), vdb: await vm.bitmaps('vdb') };
    await dirty.write('vdb', 0x81, 7 * MiB, 64 * KiB);
    const pause = join(dir, 'p3');
    let pid = 0;
    const running = cliBackground(['backup', '-r', root, '--vm', 'web01', '--qmp', vm.qmpPath, '--scratch', scratch], { ...env, BLOCKVAULT_TEST_PAUSE_AT: `qmp-exported:${pause}` }, (p) => (pid = p));
    try {
      await waitFile(`${pause}.reached`);
      await dirty.write('vdb', 0x82, 9 * MiB, 64 * KiB); // after the freeze: in the new bitmap, which must be merged back
      process.kill(pid, 'SIGTERM');
    } finally {
      writeFileSync(`${pause}.go`, '');
    }
    const r = await running;
    expect(r.code, r.stderr).toBe(130);
    expect(r.stderr).toMatch(/interrupted \(SIGTERM\)/);
    expect(await vm.qmp.execute('query-block-exports')).toEqual([]);
    expect(await vm.qmp.execute('query-jobs')).toEqual([]);
    const nodes = await vm.qmp.execute<Array<{ 'node-name': string }>>('query-named-block-nodes', { flat: true });
    expect(nodes.map((n) => n['node-name']).filter((n) => n.startsWith('bv-'))).toEqual([]);
    expect({ vda: await vm.bitmaps('vda'), vdb: await vm.bitmaps('vdb') }).toEqual(before);
    expect(readdirSync(scratch)).toEqual([]);
    expect(readdirSync(env.BLOCKVAULT_RUN_DIR)).toEqual([]);
    const expected = { vda: await vm.capture('vda', join(dir, 'a.raw')), vdb: await vm.capture('vdb', join(dir, 'b.raw')) };
    const next = await backup();
    expect(next.code, next.stderr).toBe(0);
    const result = JSON.parse(next.stdout) as VmResult;
    expect(result.disks.find((d) => d.disk === 'vdb')).toMatchObject({ mode: 'incremental', bytesRead: dirty.bytes('vdb') });
    dirty.clear();
    await expectRestores(result.group, expected, 'after-sigterm');
  }, 120_000);

  it('boot <vm>@latest starts every disk of the point in one QEMU, with the saved memory, CPUs and machine type', async () => {
    const overlays = join(dir, 'overlays');
    mkdirSync(overlays);
    const r = await new Promise<{ code: number | null; out: string }>((resolve) => {
      const child = spawn(process.execPath, [cliPath, 'boot', '-r', root, 'web01@latest', '--accel', 'tcg', '--overlay-dir', overlays, '--', '-no-reboot'], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      child.stdout.on('data', (d) => (out += d));
      child.stderr.on('data', (d) => (out += d));
      const timer = setTimeout(() => child.kill('SIGKILL'), 150_000);
      child.on('close', (code) => { clearTimeout(timer); resolve({ code, out }); });
    });
    expect(r.out).toMatch(/booting web01@[0-9a-f]{8} \(2 disks\) from the backup \(accel tcg, -machine pc-i440fx-[\d.]+ -m 256M -smp 1\)/);
    expect(r.out).toMatch(/marker: a running VM backed up by blockvault/);
    expect(r.out).toMatch(/BLOCKVAULT-BOOT-DONE/);
    expect(r.code, r.out).toBe(0);
    expect(readdirSync(overlays).sort()).toEqual([expect.stringMatching(/^web01-vda-[0-9a-f]{8}\.qcow2$/), expect.stringMatching(/^web01-vdb-[0-9a-f]{8}\.qcow2$/)]);
  }, 180_000);

  it('bad input changes nothing on the VM and commits nothing', async () => {
    const bitmaps = { vda: await vm.bitmaps('vda'), vdb: await vm.bitmaps('vdb') };
    const points = (await cliJson<unknown[]>(['list', '-r', root])).length;
    const unknown = await backup(['--disks', 'vda,vdz']);
    expect(unknown.code, unknown.stderr).toBe(1);
    expect(unknown.stderr).toMatch(/--disks vdz: VM web01 has no disk of that name; its writable disks are vda, vdb/);
    const full = join(dir, 'full');
    mkdirSync(full);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', full]);
    try {
      const noSpace = await cli(['backup', '-r', root, '--vm', 'web01', '--qmp', vm.qmpPath, '--scratch', full], { env });
      expect(noSpace.code, noSpace.stderr).toBe(4);
      expect(noSpace.stderr).toMatch(/--scratch .*full has 1(\.0+)? MiB free; fleecing these disks needs at least 160(\.0+)? MiB there.*Nothing was changed on the VM/);
    } finally {
      execFileSync('umount', [full]);
    }
    const notQmp = await cli(['backup', '-r', root, '--vm', 'web01', '--qmp', join(dir, 'nothing.sock')], { env });
    expect(notQmp.code, notQmp.stderr).toBe(1);
    expect(notQmp.stderr).toMatch(/cannot connect to the QMP socket .*nothing\.sock: no such socket/);
    expect({ vda: await vm.bitmaps('vda'), vdb: await vm.bitmaps('vdb') }).toEqual(bitmaps);
    expect((await cliJson<unknown[]>(['list', '-r', root])).length).toBe(points);
    expect((await vm.qmp.execute<{ status: string }>('query-status')).status).toMatch(/running|shutdown/);
  }, 120_000);

  it('stops a backup whose scratch directory runs low while the guest writes, before the guest\'s writes could fail', async () => {
    const before = { vda: await vm.bitmaps('vda'), vdb: await vm.bitmaps('vdb') };
    const points = (await cliJson<unknown[]>(['list', '-r', root])).length;
    const small = join(dir, 'small');
    mkdirSync(small);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=240m', 'tmpfs', small]);
    try {
      const pause = join(dir, 'p4');
      const running = cliBackground(['backup', '-r', root, '--vm', 'web01', '--qmp', vm.qmpPath, '--scratch', small], { ...env, BLOCKVAULT_TEST_PAUSE_AT: `qmp-exported:${pause}` });
      const r = await atPause(pause, running, () => {
        execFileSync('fallocate', ['-l', '200M', join(small, 'filler')]); // something else on that disk eats the room
      });
      expect(r.code, r.stderr).toBe(4);
      expect(r.stderr).toMatch(/--scratch .*small fell to .* free while the guest wrote during the backup: stopped before the fleecing images could fill it.*nothing was committed, and the next backup still has every change.*\[NO_SPACE\]/);
      expect(readdirSync(small)).toEqual(['filler']);
    } finally {
      execFileSync('umount', [small]);
    }
    await dirty.write('vdb', 0x91, 13 * MiB, 64 * KiB); // the guest writes on, unharmed
    expect({ vda: await vm.bitmaps('vda'), vdb: await vm.bitmaps('vdb') }).toEqual(before);
    expect((await cliJson<unknown[]>(['list', '-r', root])).length).toBe(points);
    expect(await vm.qmp.execute('query-jobs')).toEqual([]);
  }, 120_000);

  it('backs up a subset of the disks with --disks, and says the guest agent did not answer', async () => {
    const r = await cli(['backup', '-r', root, '--vm', 'web01', '--qmp', vm.qmpPath, '--scratch', scratch, '--disks', 'vdb', '--guest-agent', vm.agentPath], { env });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/guest agent on .*vm\.qga did not answer guest-sync within 3000 ms.*crash-consistent/);
    expect(r.stdout).toMatch(/1 disk in .*crash-consistent/);
    expect(r.stdout).toMatch(/vdb: web01\/vdb@/);
    expect(r.stdout).not.toMatch(/vda:/);
  }, 120_000);
});

describe('backup --qmp --guest-agent: a guest that runs the QEMU guest agent', () => {
  const dir = tempDir('bv-qmp-agent-');
  const root = join(dir, 'repo');
  const env = { BLOCKVAULT_RUN_DIR: join(dir, 'run') };
  let vm: TestVm;

  beforeAll(async () => {
    const raw = join(dir, 'agent.raw');
    execFileSync('bash', [new URL('../../scripts/boot-fixture.sh', import.meta.url).pathname, raw, 'marker: a guest with an agent', 'agent'], { stdio: 'pipe' });
    vm = await startVm(dir, [{ name: 'vda', file: qcow2(join(dir, 'vda.qcow2'), { from: raw }) }], { agent: true, name: 'agent01' });
    for (const end = Date.now() + 180_000; !serialLog(dir).includes('BLOCKVAULT-AGENT-READY'); await new Promise((r) => setTimeout(r, 200))) {
      if (Date.now() > end) throw new Error(`the guest did not start its agent within 180 s: ${serialLog(dir)}`);
    }
    await cli(['init', '-r', root]);
  }, 300_000);

  afterAll(async () => {
    await vm?.stop();
  });

  it('freezes the guest\'s filesystems for the instant: an application-consistent point, and the guest thawed after', async () => {
    const r = await cli(['backup', '-r', root, '--vm', 'agent01', '--qmp', vm.qmpPath, '--guest-agent', vm.agentPath, '--scratch', dir, '--json'], { env });
    expect(r.code, r.stderr).toBe(0);
    const result = JSON.parse(r.stdout) as VmResult;
    expect(result.consistency).toBe('application');
    expect(result.quiescedMs).toBeGreaterThanOrEqual(result.freezeMs); // the filesystems' freeze spans the transaction
    // The agent's own word, asked over its channel once blockvault let go of it.
    const status = await agentCall(vm.agentPath, 'guest-fsfreeze-status');
    expect(status).toBe('thawed');
    await cliJson(['restore', '-r', root, 'agent01@latest', '--to', join(dir, 'out')]);
    expect(JSON.parse(readFileSync(join(dir, 'out', 'agent01.vm.json'), 'utf8')).consistency).toBe('application');
  }, 120_000);
});

/** One command to the guest agent over its chardev socket (guest-sync first, as a client must). */
async function agentCall(path: string, command: string): Promise<unknown> {
  const { createConnection } = await import('node:net');
  return new Promise((resolve, reject) => {
    const s = createConnection({ path });
    const timer = setTimeout(() => { s.destroy(); reject(new Error(`no answer to ${command} from ${path}`)); }, 15_000);
    let buffered = '';
    let synced = false;
    s.setEncoding('latin1');
    s.on('data', (d: string) => {
      buffered += d.replace(/\xff/g, '');
      for (let nl = buffered.indexOf('\n'); nl >= 0; nl = buffered.indexOf('\n')) {
        const msg = JSON.parse(buffered.slice(0, nl)) as { return?: unknown };
        buffered = buffered.slice(nl + 1);
        if (!synced) { synced = msg.return === 4242; if (synced) s.write(`${JSON.stringify({ execute: command })}\n`); continue; }
        clearTimeout(timer);
        s.destroy();
        resolve(msg.return);
      }
    });
    s.on('error', reject);
    s.write(`${JSON.stringify({ execute: 'guest-sync-delimited', arguments: { id: 4242 } })}\n`);
  });
}

describe('backup --qmp: the VM goes away, or is not a VM', () => {
  const dir = tempDir('bv-qmp-gone-');
  const root = join(dir, 'repo');
  const env = { BLOCKVAULT_RUN_DIR: join(dir, 'run') };

  beforeAll(async () => {
    mkdirSync(join(dir, 'scratch'));
    await cli(['init', '-r', root]);
  });

  it('a VM that exits mid-backup: a clear error, nothing committed, no fleecing image left', async () => {
    const vm = await startVm(dir, [{ name: 'vda', file: qcow2(join(dir, 'vda.qcow2'), 64 * MiB) }], { memory: '64' });
    try {
      await vm.write('vda', 0x5a, 0, 8 * MiB);
      const pause = join(dir, 'p');
      const running = cliBackground(['backup', '-r', root, '--vm', 'gone', '--qmp', vm.qmpPath, '--scratch', join(dir, 'scratch')], { ...env, BLOCKVAULT_TEST_PAUSE_AT: `qmp-exported:${pause}` });
      await waitFile(`${pause}.reached`);
      vm.proc.kill('SIGKILL');
      await new Promise((r) => vm.proc.once('close', r));
      writeFileSync(`${pause}.go`, '');
      const r = await running;
      expect([4, 6]).toContain(r.code);
      expect(r.stderr).toMatch(/QEMU closed|connection|nbd|NBD/i);
      expect(r.stderr).not.toMatch(/internal error/);
      expect(readdirSync(join(dir, 'scratch'))).toEqual([]);
      expect(await cliJson<unknown[]>(['list', '-r', root])).toEqual([]);
    } finally {
      await vm.stop();
    }
  }, 120_000);

  it('a socket that is not a QMP server, and a QEMU too old', async () => {
    const silent = createServer((s) => s.write('SSH-2.0-OpenSSH_9.2\r\n'));
    // Only the greeting of a QEMU 6.2 (none runs here): blockvault must refuse it by its version.
    const old = createServer((s) => {
      s.on('data', (d) => { const m = /"id":\s*"([^"]+)"/.exec(String(d)); if (m) s.write(`${JSON.stringify({ return: {}, id: m[1] })}\r\n`); });
      s.write(`${JSON.stringify({ QMP: { version: { qemu: { major: 6, minor: 2, micro: 0 }, package: '' }, capabilities: [] } })}\r\n`);
    });
    await new Promise<void>((r) => silent.listen(join(dir, 'ssh.sock'), r));
    await new Promise<void>((r) => old.listen(join(dir, 'old.sock'), r));
    try {
      const a = await cli(['backup', '-r', root, '--vm', 'x', '--qmp', join(dir, 'ssh.sock')], { env });
      expect(a.code, a.stderr).toBe(1);
      expect(a.stderr).toMatch(/ssh\.sock is not a QMP server: it sent something that is not JSON: "SSH-2\.0-OpenSSH_9\.2"/);
      const b = await cli(['backup', '-r', root, '--vm', 'x', '--qmp', join(dir, 'old.sock')], { env });
      expect(b.code, b.stderr).toBe(6);
      expect(b.stderr).toMatch(/QEMU 6\.2\.0 is too old: a running-VM backup needs the snapshot-access block driver .*QEMU 7\.1 or newer/);
    } finally {
      silent.close();
      old.close();
    }
  }, 60_000);
});
