// Backups of a running libvirt domain (--libvirt): libvirt's pull-mode
// backup against a real libvirtd (started here by hand if it does not run:
// no systemd on these machines; ~12 s) and a real TCG domain with two qcow2
// disks written through its own devices (HMP qemu-io via libvirt). If
// libvirtd cannot start, this file fails and says why: the QMP tests cover
// the same logic without it, but a missing libvirt must not pass quietly.
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { atPause, cli, cliJson } from '../helpers/cli.js';
import { tempDir } from '../helpers/temp.js';
import { qcow2 } from '../helpers/qemu-vm.js';

const MiB = 1024 * 1024;
const uri = 'qemu:///system';
const virsh = (...args: string[]) => execFileSync('virsh', ['-q', '-c', uri, ...args], { encoding: 'utf8', timeout: 60_000 });
// libvirt 9 here re-probes QEMU's capabilities on every domain start (it sees /dev/kvm come and go in this
// nested VM: "KVM was enabled when probing ..., but it is not available now"): ~50 s, and more under load.
const createMs = 300_000;
const libvirtUp = () => spawnSync('virsh', ['-c', uri, 'version'], { stdio: 'ignore', timeout: 10_000 }).status === 0;

interface VmResult { group: string; bitmaps: Record<string, string>; reasons: Record<string, string>; cleanedUp: string[]; disks: Array<{ disk: string; mode: string; bytesRead: number }> }

/** Starts virtlogd and libvirtd by hand when none runs; returns the pids it started, to stop them again. */
async function ensureLibvirtd(): Promise<number[]> {
  if (libvirtUp()) return [];
  const ours: string[] = [];
  for (const daemon of ['virtlogd', 'libvirtd']) {
    if (spawnSync('pgrep', ['-x', daemon], { stdio: 'ignore' }).status === 0) continue; // running, only slow to answer: wait for it below
    const r = spawnSync(daemon, ['-d'], { encoding: 'utf8', timeout: 30_000 });
    if (r.status !== 0) throw new Error(`libvirtd cannot start on this machine (${daemon} -d: ${r.error?.message ?? r.stderr.trim()}): the --libvirt test cannot run; install libvirt-daemon-system (scripts/setup.sh --tests)`);
    ours.push(daemon);
  }
  for (const end = Date.now() + 60_000; !libvirtUp(); await new Promise((r) => setTimeout(r, 300))) {
    if (Date.now() > end) throw new Error('libvirtd was started but did not answer virsh within 60 s: the --libvirt test cannot run');
  }
  const pidFiles = ours.map((d) => `/run/${d}.pid`).filter((f) => existsSync(f));
  return pidFiles.map((f) => Number(readFileSync(f, 'utf8').trim()));
}

describe('backup --libvirt: a running libvirt domain, pull mode', () => {
  const dir = tempDir('bv-libvirt-');
  const root = join(dir, 'repo');
  const domain = `bv-test-${process.pid}`;
  const env = { BLOCKVAULT_RUN_DIR: join(dir, 'run') };
  let daemons: number[] = [];
  let defined = false;
  // A small scratch filesystem for the low-space test, mounted before the domain starts: libvirt's QEMU runs in
  // its own mount namespace, which (with / mounted private, as in containers) never sees a mount made later.
  const small = join(dir, 'small');
  let smallMounted = false;
  const qemuIo = (disk: number, cmd: string) => virsh('qemu-monitor-command', domain, '--hmp', `qemu-io -d /machine/peripheral/virtio-disk${disk}/virtio-backend "${cmd}"`);
  const capture = (disk: number, file: string, out: string) => { qemuIo(disk, 'flush'); execFileSync('qemu-img', ['convert', '-U', '-f', 'qcow2', '-O', 'raw', file, out]); return readFileSync(out); };
  const checkpoints = () => virsh('checkpoint-list', domain, '--name').split('\n').map((l) => l.trim()).filter(Boolean);
  /** Waits until the guest's agent answers through libvirt (each ping may take 20 s on a loaded TCG guest); on failure says what libvirt said and saw. */
  const agentConnected = async () => {
    let said = '';
    const agentUp = () => {
      const p = spawnSync('virsh', ['-c', uri, 'qemu-agent-command', domain, '--timeout', '20', '{"execute":"guest-ping"}'], { encoding: 'utf8', timeout: 30_000 });
      said = (p.stderr || p.error?.message || '').trim();
      return p.status === 0;
    };
    for (const end = Date.now() + 180_000; !agentUp(); await new Promise((r) => setTimeout(r, 500))) {
      if (Date.now() > end) {
        const channel = /<channel type='unix'>[\s\S]*?<\/channel>/.exec(virsh('dumpxml', domain))?.[0] ?? '(no channel)';
        throw new Error(`the guest's agent did not answer libvirt within 180 s (virsh: ${said}); the channel: ${channel}; its console: ${existsSync(join(dir, 'serial.log')) ? readFileSync(join(dir, 'serial.log'), 'utf8').slice(-2000) : '(none)'}`);
      }
    }
  };
  // vdc is the guest's own disk (it boots from it and runs qemu-ga): its contents change under the guest, so the byte-exact tests take vda and vdb.
  const backup = (more: Record<string, string> = {}, extra: string[] = []) => cli(['backup', '-r', root, '--vm', 'web01', '--libvirt', domain, '--scratch', dir, '--disks', 'vda,vdb', '--json', ...extra], { env: { ...env, ...more } });
  const files = { vda: join(dir, 'vda.qcow2'), vdb: join(dir, 'vdb.qcow2') };
  const expectRestores = async (group: string, name: string, expected: Record<string, Buffer>) => {
    await cliJson(['restore', '-r', root, `web01@${group}`, '--to', join(dir, name)]);
    for (const [disk, bytes] of Object.entries(expected)) expect(readFileSync(join(dir, name, `${disk}.raw`)).equals(bytes), `${name}: ${disk}`).toBe(true);
  };

  beforeAll(async () => {
    daemons = await ensureLibvirtd();
    chmodSync(dir, 0o755); // libvirt's QEMU runs as libvirt-qemu: it must reach the images
    qcow2(files.vda, 64 * MiB);
    qcow2(files.vdb, 32 * MiB);
    const raw = join(dir, 'agent.raw');
    execFileSync('bash', [new URL('../../scripts/boot-fixture.sh', import.meta.url).pathname, raw, 'marker: a libvirt guest with an agent', 'agent'], { stdio: 'pipe' });
    qcow2(join(dir, 'vdc.qcow2'), { from: raw });
    const disk = (file: string, dev: string, boot = '') => `<disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='${file}'/><target dev='${dev}' bus='virtio'/>${boot}</disk>`;
    const xml = `<domain type='qemu'><name>${domain}</name><memory unit='MiB'>256</memory><vcpu>1</vcpu><os><type arch='x86_64' machine='pc'>hvm</type></os>
      <devices><emulator>/usr/bin/qemu-system-x86_64</emulator>${disk(files.vda, 'vda')}${disk(files.vdb, 'vdb')}${disk(join(dir, 'vdc.qcow2'), 'vdc', "<boot order='1'/>")}
      <disk type='file' device='cdrom'><target dev='hdc' bus='ide'/><readonly/></disk>
      <channel type='unix'><target type='virtio' name='org.qemu.guest_agent.0'/></channel><serial type='file'><source path='${join(dir, 'serial.log')}'/></serial></devices></domain>`;
    writeFileSync(join(dir, 'domain.xml'), xml);
    mkdirSync(small);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=160m,mode=0755', 'tmpfs', small]);
    smallMounted = true;
    execFileSync('virsh', ['-q', '-c', uri, 'create', join(dir, 'domain.xml')], { encoding: 'utf8', timeout: createMs });
    defined = true;
    // Before any backup job: libvirt 9 handles the agent's "port opened" event under a domain job, and while a backup
    // job holds the domain that times out ("cannot acquire state change lock") and the agent stays disconnected.
    await agentConnected();
    await cli(['init', '-r', root]);
  }, createMs + 300_000);

  afterAll(async () => {
    if (defined) spawnSync('virsh', ['-c', uri, 'destroy', domain], { stdio: 'ignore', timeout: 60_000 });
    if (smallMounted) spawnSync('umount', [small], { stdio: 'ignore', timeout: 30_000 });
    for (const pid of daemons) { try { process.kill(pid, 'SIGTERM'); } catch { /* gone */ } }
    for (const end = Date.now() + 20_000; daemons.some((p) => { try { process.kill(p, 0); return true; } catch { return false; } }) && Date.now() < end;) await new Promise((r) => setTimeout(r, 100));
  }, 60_000);

  it('a full backup and two nightly increments: only the dirty clusters read, every point restores byte for byte, one checkpoint left', async () => {
    qemuIo(1, `write -P 0x21 0 ${2 * MiB}`);
    let result: VmResult | null = null;
    for (const night of [0, 1, 2]) {
      if (night) { qemuIo(1, `write -P ${0x30 + night} ${night * 4 * MiB} 192k`); qemuIo(0, `write -P ${0x40 + night} ${night * MiB} 64k`); }
      const expected = { vda: capture(0, files.vda, join(dir, 'a.raw')), vdb: capture(1, files.vdb, join(dir, 'b.raw')) };
      const r = await backup();
      expect(r.code, r.stderr).toBe(0);
      result = JSON.parse(r.stdout) as VmResult;
      expect(result.disks.map((d) => d.mode)).toEqual(night ? ['incremental', 'incremental'] : ['full', 'full']);
      if (night) expect(result.disks.map((d) => d.bytesRead)).toEqual([64 * 1024, 192 * 1024]);
      expect(checkpoints()).toEqual([result.bitmaps.vda]);
      await expectRestores(result.group, `night${night}`, expected);
    }
    const xml = readFileSync(join(dir, 'night2', 'web01.xml'), 'utf8');
    expect(xml).toContain(`<name>${domain}</name>`);
    expect(JSON.parse(readFileSync(join(dir, 'night2', 'web01.vm.json'), 'utf8')).machine).toMatchObject({ kind: 'libvirt', memoryBytes: 256 * MiB, cpus: 1, machineType: expect.stringMatching(/^pc/) });
  }, 240_000);

  it('a blockvault killed after backup-begin: the next run ends the job, settles the checkpoints, and its increment has every change', async () => {
    qemuIo(1, `write -P 0x51 ${9 * MiB} 64k`);
    const killed = await backup({ BLOCKVAULT_TEST_KILL_AT: 'libvirt-begun:1' });
    expect(killed.signal).toBe('SIGKILL');
    expect(virsh('domjobinfo', domain)).toMatch(/Operation:\s+Backup/);
    expect(checkpoints()).toHaveLength(2);
    qemuIo(1, `write -P 0x52 ${11 * MiB} 64k`);
    const expected = { vda: capture(0, files.vda, join(dir, 'a.raw')), vdb: capture(1, files.vdb, join(dir, 'b.raw')) };
    const r = await backup();
    expect(r.code, r.stderr).toBe(0);
    const result = JSON.parse(r.stdout) as VmResult;
    expect(result.cleanedUp.join(', ')).toMatch(/^backup job, checkpoint blockvault-/);
    expect(result.disks.find((d) => d.disk === 'vdb')).toMatchObject({ mode: 'incremental', bytesRead: 128 * 1024 });
    expect(checkpoints()).toEqual([result.bitmaps.vda]);
    await expectRestores(result.group, 'after-kill', expected);
    expect(readdirSync(dir).filter((n) => n.startsWith('blockvault-libvirt-'))).toEqual([]);
  }, 240_000);

  it('stops a backup whose scratch directory runs low: nothing committed, the job ended, the checkpoints as before', async () => {
    const before = checkpoints();
    const points = (await cliJson<unknown[]>(['list', '-r', root])).length;
    try {
      const pause = join(dir, 'p-scratch');
      const running = cli(['backup', '-r', root, '--vm', 'web01', '--libvirt', domain, '--scratch', small, '--disks', 'vda,vdb'], { env: { ...env, BLOCKVAULT_TEST_PAUSE_AT: `libvirt-begun:${pause}` } });
      const r = await atPause(pause, running, () => {
        execFileSync('fallocate', ['-l', '120M', join(small, 'filler')]); // something else on that disk eats the room
      });
      expect(r.code, r.stderr).toBe(4);
      expect(r.stderr).toMatch(/--scratch .*small fell to .* free while the guest wrote during the backup: stopped before the fleecing images could fill it.*nothing was committed.*\[NO_SPACE\]/);
      expect(readdirSync(small)).toEqual(['filler']);
    } finally {
      rmSync(join(small, 'filler'), { force: true });
    }
    expect(virsh('domjobinfo', domain)).not.toMatch(/Operation:\s+Backup/);
    expect(checkpoints()).toEqual(before);
    expect((await cliJson<unknown[]>(['list', '-r', root])).length).toBe(points);
  }, 240_000);

  it('a checkpoint deleted behind blockvault\'s back means a full read with the reason; bad names are refused', async () => {
    virsh('checkpoint-delete', domain, checkpoints()[0]);
    const r = await backup();
    expect(r.code, r.stderr).toBe(0);
    const result = JSON.parse(r.stdout) as VmResult;
    expect(result.disks.map((d) => d.mode)).toEqual(['full', 'full']);
    expect(result.reasons.vdb).toMatch(/checkpoint blockvault-\S+ of the parent is gone from domain .*: full read/);
    const missing = await cli(['backup', '-r', root, '--vm', 'web01', '--libvirt', 'no-such-domain'], { env });
    expect(missing.code, missing.stderr).toBe(1);
    expect(missing.stderr).toMatch(/--libvirt no-such-domain: no such domain on qemu:\/\/\/system/);
    const disk = await cli(['backup', '-r', root, '--vm', 'web01', '--libvirt', domain, '--disks', 'hdc'], { env });
    expect(disk.code, disk.stderr).toBe(1);
    expect(disk.stderr).toMatch(/--disks hdc: domain .* has no writable disk of that name; its writable disks are vda, vdb, vdc/);
    // Somebody else's backup job (its socket outside blockvault's work directory) is refused, and left running.
    const other = join(dir, 'other');
    mkdirSync(other);
    execFileSync('chown', ['libvirt-qemu:libvirt-qemu', other]);
    writeFileSync(join(other, 'b.xml'), `<domainbackup mode='pull'><server transport='unix' socket='${other}/nbd.sock'/><disks><disk name='vda' backup='yes' type='file'><scratch file='${other}/s.qcow2'/></disk><disk name='vdb' backup='no'/><disk name='vdc' backup='no'/></disks></domainbackup>`);
    virsh('backup-begin', domain, join(other, 'b.xml'));
    try {
      const foreign = await backup();
      expect(foreign.code, foreign.stderr).toBe(6);
      expect(foreign.stderr).toMatch(/already runs a backup job that blockvault did not start \(its NBD socket: .*\/other\/nbd\.sock/);
      expect(virsh('domjobinfo', domain)).toMatch(/Operation:\s+Backup/);
    } finally {
      virsh('domjobabort', domain);
      for (const end = Date.now() + 30_000; /Operation:\s+Backup/.test(virsh('domjobinfo', domain)) && Date.now() < end;) await new Promise((r) => setTimeout(r, 200));
    }
    expect(checkpoints()).toEqual([result.bitmaps.vda]);
  }, 240_000);

  it('--quiesce freezes the guest\'s filesystems through libvirt\'s agent channel: an application-consistent point, the guest thawed after', async () => {
    await agentConnected(); // the guest has been up since beforeAll: its agent still answers
    const r = await backup({}, ['--quiesce']);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ consistency: 'application', quiescedMs: expect.any(Number) });
    expect(virsh('qemu-agent-command', domain, '{"execute":"guest-fsfreeze-status"}')).toMatch(/"return":\s*"thawed"/);
    const plain = await backup();
    expect(JSON.parse(plain.stdout)).toMatchObject({ consistency: 'crash', quiescedMs: null });
  }, 240_000);
});
